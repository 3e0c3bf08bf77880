package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTentCLIManagement drives the tent CLI's management verbs and holds
// their output to the docker CLI's, run against the same daemon.
func TestTentCLIManagement(t *testing.T) {
	e := startTent(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339)
	e.importBusybox(t, "bb:1")
	same := func(args ...string) string {
		t.Helper()
		tent, docker := e.tentOK(t, args...), e.must(t, args...)
		if tent != docker {
			t.Errorf("%v: tent printed\n%s\ndocker printed\n%s", args, tent, docker)
		}
		return tent
	}

	// history and image inspect, as the docker CLI prints them.
	if out := same("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}", "bb:1"); !strings.Contains(out, "|") {
		t.Errorf("history: %q", out)
	}
	same("history", "-q", "--no-trunc", "bb:1")
	same("history", "--human=false", "--format", "{{.CreatedAt}} {{.Size}}", "bb:1")
	if header := strings.Fields(strings.SplitN(e.tentOK(t, "history", "bb:1"), "\n", 2)[0]); strings.Join(header, " ") != "IMAGE CREATED CREATED BY SIZE COMMENT" {
		t.Errorf("history header: %q", header)
	}
	same("image", "inspect", "--format", "{{.Id}} {{.Config.Cmd}}", "bb:1")
	if _, errOut, code := e.tent(nil, "image", "inspect", "nope"); code != 1 || !strings.Contains(errOut, "No such image: nope") {
		t.Errorf("image inspect nope: exit %d %q", code, errOut)
	}

	// pause, unpause, rename, top.
	e.tentOK(t, "run", "-d", "--name", "web", "bb:1", "sleep", "1000")
	e.tentOK(t, "pause", "web")
	if st := e.tentOK(t, "inspect", "-f", "{{.State.Status}}", "web"); st != "paused\n" {
		t.Errorf("after pause: %q", st)
	}
	if _, errOut, code := e.tent(nil, "attach", "web"); code != 1 || !strings.Contains(errOut, "paused") {
		t.Errorf("attach to a paused container: exit %d %q", code, errOut)
	}
	e.tentOK(t, "unpause", "web")
	if st := e.tentOK(t, "container", "inspect", "-f", "{{.State.Status}}", "web"); st != "running\n" {
		t.Errorf("after unpause: %q", st)
	}
	e.tentOK(t, "rename", "web", "web2")
	if name := e.tentOK(t, "inspect", "-f", "{{.Name}}", "web2"); name != "/web2\n" {
		t.Errorf("after rename: %q", name)
	}
	if _, errOut, code := e.tent(nil, "rename", "web", "web3"); code != 1 || !strings.Contains(errOut, "No such container: web") {
		t.Errorf("rename of a gone name: exit %d %q", code, errOut)
	}
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	top := e.tentOK(t, "top", "web2")
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sleep 1000") {
		t.Errorf("top: %q", top)
	}
	// Columns spaced as docker's; the TIME column may tick between calls.
	if dockerTop := e.must(t, "top", "web2"); len(strings.Split(top, "\n")) != len(strings.Split(dockerTop, "\n")) || !strings.HasPrefix(fields(dockerTop), fields(strings.SplitN(top, "\n", 2)[0])) {
		t.Errorf("top: tent\n%s\ndocker\n%s", top, dockerTop)
	}

	// attach: stdin in, output out, the container's exit status back.
	e.tentOK(t, "run", "-d", "-i", "--name", "reader", "bb:1", "sh", "-c", "read x; echo got $x; exit 5")
	if out, _, code := e.tent(strings.NewReader("hello\n"), "attach", "reader"); out != "got hello\n" || code != 5 {
		t.Errorf("attach: %q exit %d", out, code)
	}
	if _, errOut, code := e.tent(nil, "attach", "reader"); code != 1 || !strings.Contains(errOut, "You cannot attach to a stopped container") {
		t.Errorf("attach to a stopped container: exit %d %q", code, errOut)
	}

	// events in docker's line format, the same as the docker CLI's.
	until := time.Now().Add(time.Second).Format(time.RFC3339)
	time.Sleep(1100 * time.Millisecond)
	ev := same("events", "--since", since, "--until", until, "--filter", "type=container")
	line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container start [0-9a-f]{64} \(.*name=web.*\)$`)
	if !line.MatchString(ev) {
		t.Errorf("events: %q", ev)
	}

	// container prune: a refusal changes nothing, -f removes the stopped.
	readerID := strings.TrimSpace(e.tentOK(t, "inspect", "-f", "{{.Id}}", "reader"))
	if out, _, code := e.tent(strings.NewReader("n\n"), "container", "prune"); code != 0 || !strings.Contains(out, "WARNING! This will remove all stopped containers.") {
		t.Errorf("prune, answered no: exit %d %q", code, out)
	}
	e.tentOK(t, "inspect", "reader")
	if out := e.tentOK(t, "container", "prune", "-f"); out != "Deleted Containers:\n"+readerID+"\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("container prune: %q", out)
	}
	if _, _, code := e.tent(nil, "inspect", "reader"); code != 1 {
		t.Errorf("reader is still there after prune")
	}
	e.tentOK(t, "inspect", "web2") // running: kept

	// image prune: a retagged image becomes dangling, and goes.
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(rootfs, 0o755)
	os.WriteFile(filepath.Join(rootfs, "f"), []byte("1"), 0o644)
	tarball := filepath.Join(t.TempDir(), "one.tar")
	tarDir(t, rootfs, tarball)
	old := strings.TrimSpace(e.tentOK(t, "import", tarball, "x:1"))
	os.WriteFile(filepath.Join(rootfs, "f"), []byte("2"), 0o644)
	tarDir(t, rootfs, tarball)
	e.tentOK(t, "import", tarball, "x:1")
	if out := e.tentOK(t, "image", "prune", "-f"); !strings.HasPrefix(out, "Deleted Images:\ndeleted: "+old+"\n") || !strings.Contains(out, "Total reclaimed space: ") {
		t.Errorf("image prune: %q (want %s deleted)", out, old)
	}

	// Prune filters: labels, label!, until (only what is older).
	a1 := strings.TrimSpace(e.must(t, "create", "--label", "a=1", "bb:1", "true"))
	e.must(t, "create", "--label", "a=2", "bb:1", "true")
	if out := e.must(t, "container", "prune", "-f", "--filter", "until=1h"); strings.Contains(out, "Deleted") {
		t.Errorf("prune until=1h took new containers: %q", out)
	}
	if out := e.tentOK(t, "container", "prune", "-f", "--filter", "label=a=1"); out != "Deleted Containers:\n"+a1+"\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune label=a=1: %q", out)
	}
	if out := e.must(t, "container", "prune", "-f", "--filter", "label!=a=2"); strings.Contains(out, "Deleted") {
		t.Errorf("prune label!=a=2 took the a=2 container: %q", out)
	}
	if _, errOut, code := e.runIn(nil, "container", "prune", "-f", "--filter", "bogus=1"); code == 0 || !strings.Contains(errOut, "invalid filter 'bogus'") {
		t.Errorf("prune with a bad filter: exit %d %q", code, errOut)
	}
	e.must(t, "container", "prune", "-f")

	same("info", "--format", "{{.Driver}} {{.Containers}} {{.Images}}")
	if out := e.tentOK(t, "info"); !strings.Contains(out, "Server:") || !strings.Contains(out, " Containers: 1") {
		t.Errorf("info: %q", out)
	}
	if out := e.tentOK(t, "version"); !strings.Contains(out, "Client:") || !strings.Contains(out, "Server:") || !strings.Contains(out, "API version") {
		t.Errorf("version: %q", out)
	}
	e.tentOK(t, "rm", "-f", "web2")
}

func tarDir(t *testing.T, dir, tarball string) {
	t.Helper()
	if out, err := exec.Command("tar", "-C", dir, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
}
