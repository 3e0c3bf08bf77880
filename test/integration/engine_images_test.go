package integration

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEngineImagesSaveLoadAndCrashMidLoad(t *testing.T) {
	e := startTent(t)
	id := strings.TrimSpace(e.must(t, "inspect", "--format", "{{.Id}}", "busybox"))
	archive := filepath.Join(t.TempDir(), "bb.tar")
	e.must(t, "save", "-o", archive, "busybox")
	e.must(t, "rmi", "busybox")
	if out := e.must(t, "load", "-i", archive); !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Errorf("load: %q", out)
	}
	if got := strings.TrimSpace(e.must(t, "inspect", "--format", "{{.Id}}", "busybox")); got != id {
		t.Errorf("image ID after save and load: %s, want %s", got, id)
	}
	e.must(t, "tag", "busybox", "example.com/team/bb:v1")
	if out := e.must(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "example.com/team/bb:v1") {
		t.Errorf("images after tag: %q", out)
	}
	if out := e.must(t, "run", "--rm", "example.com/team/bb:v1", "echo", "tagged"); out != "tagged\n" {
		t.Errorf("run by the new tag: %q", out)
	}

	big := bigImageArchive(t, e)
	// Send half the archive, then kill the daemon mid-load.
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pr, pw := io.Pipe()
	load := e.command("load")
	load.Stdin = pr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(pw, f, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	e.kill9()
	pw.Close()
	load.Wait()
	e.start()
	out := e.must(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if strings.Contains(out, "big") {
		t.Errorf("a half-loaded image is listed: %q", out)
	}
	ingest, _ := os.ReadDir(filepath.Join(e.dir, "data", "content", "ingest"))
	if len(ingest) != 0 {
		t.Errorf("temporary blobs left after restart: %d", len(ingest))
	}
	e.must(t, "load", "-i", big)
	if out := e.must(t, "run", "--rm", "big:1", "sh", "-c", "wc -c < /blob"); strings.TrimSpace(out) != strconv.Itoa(32<<20) {
		t.Errorf("loaded after the crash: %q", out)
	}
}

func TestEngineLoadsDockerSave(t *testing.T) {
	d := startDocker(t)
	archive := filepath.Join(t.TempDir(), "docker-save.tar")
	d.must(t, "save", "-o", archive, "busybox:tent")
	want := strings.TrimSpace(d.must(t, "inspect", "--format", "{{.Id}}", "busybox:tent"))
	e := startTent(t)
	e.must(t, "load", "-i", archive)
	if got := strings.TrimSpace(e.must(t, "inspect", "--format", "{{.Id}}", "busybox:tent")); got != want {
		t.Errorf("image ID: tent %s, docker %s", got, want)
	}
	// And back: docker loads what tent saves.
	back := filepath.Join(t.TempDir(), "tent-save.tar")
	e.must(t, "tag", "busybox:tent", "busybox:roundtrip")
	e.must(t, "save", "-o", back, "busybox:roundtrip")
	d.must(t, "load", "-i", back)
	if got := strings.TrimSpace(d.must(t, "inspect", "--format", "{{.Id}}", "busybox:roundtrip")); got != want {
		t.Errorf("docker loaded tent's archive as %s, want %s", got, want)
	}
}

// TestEngineLoadsSkopeoOCIArchive: a bare OCI image layout (no
// manifest.json), as skopeo writes one, loads with its name and the same
// image ID, and runs.
func TestEngineLoadsSkopeoOCIArchive(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (apt-get install skopeo)")
	}
	e := startTent(t)
	saved := filepath.Join(t.TempDir(), "saved.tar")
	e.must(t, "save", "-o", saved, "busybox")
	want := e.must(t, "inspect", "--format", "{{.Id}}", "busybox")
	oci := filepath.Join(t.TempDir(), "oci.tar")
	if out, err := exec.Command("skopeo", "copy", "docker-archive:"+saved, "oci-archive:"+oci+":example.com/oci/bb:v1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	if out, err := exec.Command("tar", "-tf", oci).Output(); err != nil || strings.Contains(string(out), "manifest.json") {
		t.Fatalf("skopeo's archive: %v\n%s", err, out)
	}
	if out := e.must(t, "load", "-i", oci); out != "Loaded image: example.com/oci/bb:v1\n" {
		t.Errorf("load: %q", out)
	}
	if got := e.must(t, "inspect", "--format", "{{.Id}}", "example.com/oci/bb:v1"); got != want {
		t.Errorf("image ID: %s, want %s", got, want)
	}
	if out := e.must(t, "run", "--rm", "example.com/oci/bb:v1", "echo", "from-oci"); out != "from-oci\n" {
		t.Errorf("run: %q", out)
	}
}
