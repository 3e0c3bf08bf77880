package imagesvc

import (
	"archive/tar"
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/imagestest"
	"github.com/tent-project/tent/internal/registry"
)

// users is a test's containers: image ID -> container, running.
type users map[string]struct {
	id      string
	running bool
}

func (u users) ImageUsers() map[string]int64 {
	out := map[string]int64{}
	for img := range u {
		out[img]++
	}
	return out
}

func (u users) ImageUser(id digest.Digest) (string, bool) {
	c := u[id.String()]
	return c.id, c.running
}

func newService(t *testing.T, ctrs users) (*Service, *eventbus.Bus) {
	t.Helper()
	stores := imagestest.New(t, imagestest.Native)
	st, cs, sn := stores.Images, stores.Content, stores.Snap
	reg, err := registry.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New()
	return New(Config{Store: st, Content: cs, Snap: sn, Driver: "native", Registry: reg, Events: bus, Containers: ctrs}), bus
}

// rootfs is a tarball of one file.
func rootfs(t *testing.T, name, data string) *bytes.Buffer {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
	tw.Write([]byte(data))
	tw.Close()
	return &b
}

// TestImportListInspectHistory: an imported image with --change lines is
// listed, inspected and has its history, as dockerd shows them; events
// say what happened.
func TestImportListInspectHistory(t *testing.T) {
	s, bus := newService(t, users{})
	_, ch, cancel := bus.Subscribe(time.Time{})
	defer cancel()
	img, err := s.ImageImport(rootfs(t, "hello", "hi"), "example.com/app:1", []string{`CMD ["/hello"]`, "ENV A=1 B=\"two words\"", "LABEL tier=web"}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Action != events.ActionImport || ev.Actor.ID != img.ID.String() || ev.Actor.Attributes["name"] != "example.com/app:1" {
		t.Errorf("import event: %+v", ev)
	}
	list, err := s.ImageList(false, map[string][]string{"label": {"tier=web"}}, true)
	if err != nil || len(list) != 1 || list[0].RepoTags[0] != "example.com/app:1" || list[0].Size != 2048 || // the native snapshotter: the blob's size
		list[0].SharedSize != 0 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if list, _ := s.ImageList(false, map[string][]string{"reference": {"example.com/ap*"}}, false); len(list) != 1 || list[0].SharedSize != -1 {
		t.Errorf("reference filter: %+v", list)
	}
	if list, _ := s.ImageList(false, map[string][]string{"dangling": {"true"}}, false); len(list) != 0 {
		t.Errorf("dangling filter: %+v", list)
	}
	if _, err := s.ImageList(false, map[string][]string{"bogus": {"x"}}, false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("an unknown filter: %v", err)
	}
	ins, err := s.ImageInspect("example.com/app:1")
	if err != nil || strings.Join(ins.Config.Cmd, " ") != "/hello" || ins.Config.Labels["tier"] != "web" || ins.Comment != "Imported from -" ||
		!strings.Contains(strings.Join(ins.Config.Env, ","), "B=two words") || len(ins.RootFS.Layers) != 1 {
		t.Errorf("inspect: %+v %v", ins, err)
	}
	hist, err := s.ImageHistory(img.ID.String())
	if err != nil || len(hist) != 1 || hist[0].ID != img.ID.String() || hist[0].Size != 2048 {
		t.Errorf("history: %+v %v", hist, err)
	}
	if _, err := s.ImageInspect("nosuch"); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nosuch") {
		t.Errorf("inspect of a missing image: %v", err)
	}
}

// TestRemoveRules: docker's rules for images that containers use.
func TestRemoveRules(t *testing.T) {
	ctrs := users{}
	s, _ := newService(t, ctrs)
	img, err := s.ImageImport(rootfs(t, "f", "x"), "app:1", nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImageTag("app:1", "app:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageRemove(img.ID.String(), false); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "referenced in multiple repositories") {
		t.Errorf("remove by ID of a twice-named image: %v", err)
	}
	if out, err := s.ImageRemove("app:2", false); err != nil || len(out) != 1 || out[0].Untagged != "app:2" {
		t.Errorf("untag: %+v %v", out, err)
	}
	ctrs[img.ID.String()] = struct {
		id      string
		running bool
	}{"c0ffee0000000000", true}
	if _, err := s.ImageRemove("app:1", true); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "being used by running container c0ffee000000") {
		t.Errorf("forced remove of a running container's image: %v", err)
	}
	if pruned, err := s.ImagePrune(true, backend.PruneFilter{}); err != nil || len(pruned) != 0 {
		t.Errorf("prune of a used image: %+v %v", pruned, err)
	}
	delete(ctrs, img.ID.String())
	out, err := s.ImagePrune(true, backend.PruneFilter{})
	if err != nil || len(out) != 2 || out[1].Deleted != img.ID.String() {
		t.Errorf("prune -a: %+v %v", out, err)
	}
}

func TestApplyChange(t *testing.T) {
	var cfg ocispec.ImageConfig
	for _, ch := range []string{"CMD echo hi", `ENTRYPOINT ["/init"]`, "EXPOSE 80 53/udp", "VOLUME /data", "WORKDIR /w", "USER nobody", "ENV K V W", "LABEL a=b"} {
		if err := ApplyChange(&cfg, ch); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
	}
	if strings.Join(cfg.Cmd, "|") != "/bin/sh|-c|echo hi" || cfg.Entrypoint[0] != "/init" || len(cfg.ExposedPorts) != 2 || cfg.ExposedPorts["80/tcp"] != struct{}{} ||
		cfg.WorkingDir != "/w" || cfg.User != "nobody" || cfg.Env[0] != "K=V W" || cfg.Labels["a"] != "b" || len(cfg.Volumes) != 1 {
		t.Errorf("config: %+v", cfg)
	}
	for _, bad := range []string{"RUN true", `ENV A="open`, "LABEL =x"} {
		if err := ApplyChange(&cfg, bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestCommitImage: a committed container's image has its base's layers
// and one more, the container's config with the request's fields and
// changes over it, a history entry of its command, and the asked name.
func TestCommitImage(t *testing.T) {
	s, _ := newService(t, users{})
	img, err := s.ImageImport(rootfs(t, "base", "b"), "base:1", []string{"CMD [\"/base\"]"}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.store.DockerConfig(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	layer := rootfs(t, "added", "a").Bytes()
	diffID, err := s.store.AddLayerWritten(base.RootFS.DiffIDs, func(w io.Writer) (digest.Digest, error) {
		_, err := w.Write(layer)
		return digest.FromBytes(layer), err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctr := &container.Config{Cmd: []string{"/run"}, Env: []string{"A=1"}, Labels: map[string]string{"from": "ctr"}, User: "app"}
	o := backend.CommitOptions{Repo: "committed", Tag: "v2", Author: "me", Comment: "a commit", Changes: []string{"EXPOSE 8080"},
		Config: &container.Config{Env: []string{"B=2"}, Labels: map[string]string{"extra": "yes"}}}
	id, err := s.CommitImage(base, diffID, ctr, o, "/run now")
	if err != nil {
		t.Fatal(err)
	}
	ins, err := s.ImageInspect("committed:v2")
	if err != nil || ins.ID != id.String() || len(ins.RootFS.Layers) != 2 || ins.Author != "me" || ins.Comment != "a commit" {
		t.Fatalf("inspect: %+v %v", ins, err)
	}
	c := ins.Config
	if strings.Join(c.Cmd, " ") != "/run" || strings.Join(c.Env, ",") != "A=1,B=2" || c.Labels["from"] != "ctr" || c.Labels["extra"] != "yes" ||
		c.User != "app" || len(c.ExposedPorts) != 1 {
		t.Errorf("config: %+v", c)
	}
	hist, _ := s.ImageHistory(id.String())
	if len(hist) != 2 || hist[0].CreatedBy != "/run now" || hist[0].Comment != "a commit" {
		t.Errorf("history: %+v", hist)
	}
}

// TestRunConfig: a container's configuration merged with its image's
// (command, environment as dockerd orders it, working directory),
// and the platform it asked for checked.
func TestRunConfig(t *testing.T) {
	s, _ := newService(t, users{})
	if _, err := s.ImageImport(rootfs(t, "hello", "hi"), "app:1", []string{`CMD ["/hello"]`, "ENV A=1", "WORKDIR /srv"}, "", ""); err != nil {
		t.Fatal(err)
	}
	img, merged, err := s.RunConfig(&container.Config{Image: "app:1", Env: []string{"B=2"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if img == nil || strings.Join(merged.Cmd, " ") != "/hello" || strings.Join(merged.Env, ",") != "B=2,A=1" || merged.WorkingDir != "/srv" {
		t.Errorf("merged: %+v", merged)
	}
	_, merged, err = s.RunConfig(&container.Config{Image: "app:1", Cmd: []string{"/other"}}, runtime.GOOS+"/"+runtime.GOARCH)
	if err != nil || strings.Join(merged.Cmd, " ") != "/other" {
		t.Errorf("own command, own platform: %+v %v", merged, err)
	}
	if _, _, err := s.RunConfig(&container.Config{Image: "app:1"}, "linux/s390x"); !errdefs.IsNotFound(err) ||
		!strings.Contains(err.Error(), "does not match the specified platform: wanted linux/s390x") {
		t.Errorf("another platform: %v", err)
	}
	if _, _, err := s.RunConfig(&container.Config{Image: "nothere:1"}, ""); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nothere:1") {
		t.Errorf("a missing image: %v", err)
	}
}
