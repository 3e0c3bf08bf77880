package distribution

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/imagestest"
	tentreg "github.com/tent-project/tent/internal/registry"
)

func newService(t *testing.T) (*Service, *images.Store, *[]string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (unpacking keeps owners)")
	}
	store := imagestest.New(t, imagestest.Native).Images
	reg, err := tentreg.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	return New(store, reg, func(a events.Action, id, name string) { seen = append(seen, string(a)+" "+name) }), store, &seen
}

func layer(t *testing.T, body string) *bytes.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "hello", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
	tw.Write([]byte(body))
	tw.Close()
	return bytes.NewReader(buf.Bytes())
}

// TestPushThenPull sends an image to an in-memory registry and gets it
// back into a second store: the same image ID, docker's progress messages.
func TestPushThenPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/test/app:1"

	push, src, pushed := newService(t)
	img, err := src.Import(layer(t, "hi"), ref, ocispec.ImageConfig{Cmd: []string{"/hello"}}, "", ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := push.Push(context.Background(), host+"/test/app", "1", tentreg.Auth{}, NewProgress(&out, nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Pushed") || !strings.Contains(out.String(), "digest: sha256:") || strings.Contains(out.String(), "errorDetail") {
		t.Errorf("push progress: %s", out.String())
	}
	if strings.Join(*pushed, ",") != "push "+ref {
		t.Errorf("push events: %v", *pushed)
	}

	pull, dst, pulled := newService(t)
	out.Reset()
	if err := pull.Pull(context.Background(), ref, "", tentreg.Auth{}, NewProgress(&out, nil)); err != nil {
		t.Fatal(err)
	}
	got, err := dst.Get(ref)
	if err != nil {
		t.Fatalf("pulled image: %v (progress %s)", err, out.String())
	}
	if got.ID != img.ID {
		t.Errorf("pulled image ID %s, pushed %s", got.ID, img.ID)
	}
	if !strings.Contains(out.String(), "Pull complete") || !strings.Contains(out.String(), "Status: Downloaded newer image for "+ref) {
		t.Errorf("pull progress: %s", out.String())
	}
	if strings.Join(*pulled, ",") != "pull "+ref {
		t.Errorf("pull events: %v", *pulled)
	}
	// Pulled again: nothing new.
	out.Reset()
	pull.Pull(context.Background(), ref, "", tentreg.Auth{}, NewProgress(&out, nil))
	if !strings.Contains(out.String(), "Image is up to date") {
		t.Errorf("second pull: %s", out.String())
	}
	// A missing tag fails before any progress, as a plain error.
	out.Reset()
	if err := pull.Pull(context.Background(), host+"/test/app:nosuch", "", tentreg.Auth{}, NewProgress(&out, nil)); err == nil || out.Len() != 0 {
		t.Errorf("pull of a missing tag: %v, progress %q", err, out.String())
	}
}
