package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/server"
	"github.com/tent-project/tent/internal/testutil"
)

// The Go SDK suite (issue 16): tent driven through the Docker Go SDK
// (github.com/moby/moby/client) the way programs built on it drive
// dockerd, checking the decoded answers, the stream framing and the error
// classes, at the SDK's lowest API version, one in between and tent's
// highest.

// sdkClient is a Go SDK client of the engine at host, pinned to API
// version v (no negotiation: every request carries /v<v>/).
func sdkClient(t *testing.T, host, v string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost(host), client.WithAPIVersion(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// must takes a call's two results and returns a check that fails t on
// the error and returns the value: must(c.Ping(ctx, opts))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// busyboxTar is the busybox rootfs as a tar stream, the input of an
// image import.
func busyboxTar(t *testing.T) []byte {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	testutil.BusyboxRootfs(t, rootfs)
	out, err := exec.Command("tar", "-C", rootfs, "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar: %v", err)
	}
	return out
}

// tarFiles is a tar stream of regular files (name to content).
func tarFiles(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	}) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(files[name])), Uid: 7, Gid: 8, ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[name]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// tarNames reads a tar stream and returns its entries' names and the
// content of its regular files.
func tarNames(t *testing.T, r io.Reader) (names []string, content map[string]string) {
	t.Helper()
	content = map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, content
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		name := strings.TrimPrefix(strings.TrimSuffix(h.Name, "/"), "./")
		names = append(names, name)
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			content[name] = string(b)
		}
	}
}

// jsonMessages reads a JSON message stream (pull, load, import, build)
// to its end and returns its messages; the stream must end cleanly.
func jsonMessages(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var msgs []map[string]any
	dec := json.NewDecoder(r)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return msgs
		} else if err != nil {
			t.Fatalf("message stream: %v (after %v)", err, msgs)
		}
		msgs = append(msgs, m)
	}
}

// streamError is the first error message of a JSON message stream.
func streamError(msgs []map[string]any) string {
	for _, m := range msgs {
		if s, ok := m["error"].(string); ok {
			return s
		}
	}
	return ""
}

// demux splits a multiplexed (non-tty) attach, logs or exec stream.
func demux(t *testing.T, r io.Reader) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, r); err != nil {
		t.Fatalf("demultiplexing: %v (so far stdout %q, stderr %q)", err, o.String(), e.String())
	}
	return o.String(), e.String()
}

func TestSDK(t *testing.T) {
	e := startTent(t)
	bb := busyboxTar(t)
	for _, v := range []string{client.MinAPIVersion, "1.45", server.APIVersion} {
		t.Run(v, func(t *testing.T) {
			sdkWalk(t, sdkClient(t, e.host, v), v, bb)
		})
	}
}

// sdkWalk drives every endpoint group tent serves through c.
func sdkWalk(t *testing.T, c *client.Client, v string, busybox []byte) {
	ctx := context.Background()
	sfx := "-" + strings.ReplaceAll(v, ".", "")
	img := "sdk/busybox" + sfx + ":1"
	since := time.Now()

	// System.
	ping := must(c.Ping(ctx, client.PingOptions{}))(t)
	if ping.APIVersion != server.APIVersion || ping.OSType != "linux" {
		t.Errorf("ping: %+v", ping)
	}
	ver := must(c.ServerVersion(ctx, client.ServerVersionOptions{}))(t)
	if ver.APIVersion != server.APIVersion || ver.MinAPIVersion != server.MinAPIVersion || ver.Os != "linux" || ver.Arch == "" || ver.Platform.Name == "" || len(ver.Components) == 0 {
		t.Errorf("version: %+v", ver)
	}

	info := must(c.Info(ctx, client.InfoOptions{}))(t).Info
	if info.OSType != "linux" || info.NCPU == 0 || info.MemTotal == 0 || info.Driver == "" || info.DefaultRuntime == "" || info.LoggingDriver != "json-file" ||
		info.Runtimes[info.DefaultRuntime].Path == "" || info.Runtimes["runc"].Path == "" || info.ServerVersion != ver.Version || info.Name == "" {
		t.Errorf("info: %+v", info)
	}

	// Images: import, inspect, list, tag, history, save and load.
	msgs := jsonMessages(t, must(c.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(busybox), SourceName: "-"}, img,
		client.ImageImportOptions{Changes: []string{`CMD ["sh"]`, "ENV SDK=1"}, Message: "from the sdk"}))(t))
	if s := streamError(msgs); s != "" || len(msgs) == 0 {
		t.Fatalf("import: %v", msgs)
	}
	var raw bytes.Buffer
	ii := must(c.ImageInspect(ctx, img, client.ImageInspectWithRawResponse(&raw)))(t)
	sdkVersionedFields(t, v, "image inspect", raw.Bytes(), map[string]string{"VirtualSize": "1.44", "Container": "1.45", "ContainerConfig": "1.45", "Config.Hostname": "1.50"})
	if !slices.Equal(ii.Config.Cmd, []string{"sh"}) || !slices.Contains(ii.Config.Env, "SDK=1") || ii.Os != "linux" || ii.Architecture == "" ||
		len(ii.RootFS.Layers) != 1 || ii.RootFS.Type != "layers" || ii.Size <= 0 || !slices.Contains(ii.RepoTags, img) || ii.Comment != "from the sdk" {
		t.Errorf("image inspect: %+v config %+v", ii.InspectResponse, ii.Config)
	}
	must(c.ImageTag(ctx, client.ImageTagOptions{Source: img, Target: img + "-tag"}))(t)
	list := must(c.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", "sdk/busybox"+sfx)}))(t)
	if len(list.Items) != 1 || len(list.Items[0].RepoTags) != 2 || list.Items[0].ID != ii.ID || list.Items[0].Size != ii.Size {
		t.Errorf("image list by reference: %+v", list.Items)
	}
	hist := must(c.ImageHistory(ctx, img))(t)
	if len(hist.Items) == 0 || hist.Items[0].ID != ii.ID {
		t.Errorf("history: %+v", hist.Items)
	}
	saved := must(io.ReadAll(must(c.ImageSave(ctx, []string{img}))(t)))(t)
	if names, _ := tarNames(t, bytes.NewReader(saved)); !slices.Contains(names, "manifest.json") || !slices.Contains(names, "index.json") {
		t.Errorf("save: entries %v", names)
	}
	rm := must(c.ImageRemove(ctx, img+"-tag", client.ImageRemoveOptions{}))(t)
	if len(rm.Items) != 1 || rm.Items[0].Untagged != img+"-tag" {
		t.Errorf("remove of a second tag: %+v", rm.Items)
	}
	load := must(c.ImageLoad(ctx, bytes.NewReader(saved)))(t)
	if msgs := jsonMessages(t, load); streamError(msgs) != "" || !strings.Contains(strings.Join(messageTexts(msgs), " "), img) {
		t.Errorf("load: %v", msgs)
	}
	load = must(c.ImageLoad(ctx, strings.NewReader("not a tar")))(t)
	if msgs := jsonMessages(t, load); streamError(msgs) == "" {
		t.Errorf("load of a bad archive: no error message in the stream: %v", msgs)
	}
	if _, err := c.ImageInspect(ctx, "sdk/none:1"); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a missing image: %v, want not found", err)
	}

	// A container's life: create, start, inspect, list, logs, attach, top,
	// stats, pause, rename, update, kill, wait, remove.
	name := "sdk-main" + sfx
	cr := must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config:     &container.Config{Image: img, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exec sleep 300"}, Labels: map[string]string{"sdk": v}, Env: []string{"A=b"}},
		HostConfig: &container.HostConfig{GroupAdd: []string{"1000"}, Resources: container.Resources{Memory: 64 << 20}}}))(t)
	if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Image: img}); !cerrdefs.IsConflict(err) {
		t.Errorf("create with a name in use: %v, want conflict", err)
	}
	if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Image: "sdk/none:1"}); !cerrdefs.IsNotFound(err) {
		t.Errorf("create from a missing image: %v, want not found", err)
	}
	ci := must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container
	if ci.ID != cr.ID || ci.Name != "/"+name || ci.State.Status != container.StateCreated || ci.HostConfig.LogConfig.Type != "json-file" ||
		ci.HostConfig.Runtime != info.DefaultRuntime || ci.Config.Labels["sdk"] != v || !slices.Contains(ci.Config.Env, "SDK=1") || ci.Image != ii.ID ||
		ci.HostConfig.Memory != 64<<20 || ci.Driver == "" || ci.Platform != "linux" {
		t.Errorf("inspect of a created container: state %+v host config %+v config %+v image %s driver %q", ci.State, ci.HostConfig, ci.Config, ci.Image, ci.Driver)
	}
	// A default that changed keeps its old value for an old client: the
	// cgroup namespace was the host's on cgroup v1 before 1.41.
	if want := container.CgroupnsModePrivate; ci.HostConfig.CgroupnsMode != want && (v >= "1.41" || cgroups.Unified()) ||
		ci.HostConfig.CgroupnsMode != container.CgroupnsModeHost && v < "1.41" && !cgroups.Unified() {
		t.Errorf("cgroup namespace mode at API %s: %q", v, ci.HostConfig.CgroupnsMode)
	}
	sdkVersionedFields(t, v, "container inspect", must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Raw,
		map[string]string{"HostConfig.KernelMemory": "1.42", "HostConfig.KernelMemoryTCP": "1.42"})
	must(c.ContainerStart(ctx, name, client.ContainerStartOptions{}))(t)
	ci = must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container
	if !ci.State.Running || ci.State.Pid <= 0 || ci.State.Status != container.StateRunning || ci.State.StartedAt == "" {
		t.Errorf("inspect of a started container: %+v", ci.State)
	}
	cl := must(c.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", "sdk="+v)}))(t)
	if len(cl.Items) != 1 || cl.Items[0].ID != cr.ID || cl.Items[0].State != container.StateRunning || !strings.HasPrefix(cl.Items[0].Status, "Up") ||
		cl.Items[0].Image != img || cl.Items[0].Names[0] != "/"+name {
		t.Errorf("list by label: %+v", cl.Items)
	}
	eventually(t, "both lines in the logs", func() error {
		logs := must(c.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}))(t)
		defer logs.Close()
		if o, e := demux(t, logs); o != "out\n" || e != "err\n" {
			return errors.New("stdout " + o + " stderr " + e)
		}
		return nil
	})
	top := must(c.ContainerTop(ctx, name, client.ContainerTopOptions{}))(t)
	if !slices.Contains(top.Titles, "PID") || len(top.Processes) != 1 || !strings.Contains(strings.Join(top.Processes[0], " "), "sleep 300") {
		t.Errorf("top: %+v", top)
	}
	stats := must(c.ContainerStats(ctx, name, client.ContainerStatsOptions{}))(t)
	var st container.StatsResponse
	if err := json.NewDecoder(stats.Body).Decode(&st); err != nil {
		t.Errorf("stats: %v", err)
	}
	stats.Body.Close()
	if st.ID != cr.ID || st.Name != "/"+name || st.MemoryStats.Usage == 0 || st.MemoryStats.Limit != 64<<20 || st.PidsStats.Current != 1 || st.CPUStats.CPUUsage.TotalUsage == 0 {
		t.Errorf("stats: %+v", st)
	}
	must(c.ContainerPause(ctx, name, client.ContainerPauseOptions{}))(t)
	if s := must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container.State; !s.Paused || s.Status != container.StatePaused {
		t.Errorf("inspect of a paused container: %+v", s)
	}
	if _, err := c.ContainerRemove(ctx, name, client.ContainerRemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove of a running container: %v, want conflict", err)
	}
	must(c.ContainerUnpause(ctx, name, client.ContainerUnpauseOptions{}))(t)
	must(c.ContainerUpdate(ctx, name, client.ContainerUpdateOptions{Resources: &container.Resources{Memory: 96 << 20, MemorySwap: -1, PidsLimit: ptr(int64(50))}}))(t)
	ci = must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container
	if ci.HostConfig.Memory != 96<<20 || ci.HostConfig.PidsLimit == nil || *ci.HostConfig.PidsLimit != 50 {
		t.Errorf("inspect after update: memory %d pids %v", ci.HostConfig.Memory, ci.HostConfig.PidsLimit)
	}
	must(c.ContainerRename(ctx, name, client.ContainerRenameOptions{NewName: name + "-r"}))(t)
	name += "-r"

	sdkExec(t, c, name)
	sdkArchive(t, c, name, img)

	// Kill answers once the container is stopped; wait reports its status.
	wait := c.ContainerWait(ctx, name, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	must(c.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: "KILL"}))(t)
	if s := must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container.State; s.Running || s.ExitCode != 137 || s.Status != container.StateExited {
		t.Errorf("inspect right after kill: %+v", s)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 137 {
			t.Errorf("wait: %+v", r)
		}
	case err := <-wait.Error:
		t.Errorf("wait: %v", err)
	case <-time.After(10 * time.Second):
		t.Error("wait did not answer within 10s of the kill")
	}
	// Attach with logs=1 stream=0 to a stopped container returns its logs.
	att := must(c.ContainerAttach(ctx, name, client.ContainerAttachOptions{Logs: true, Stdout: true, Stderr: true}))(t)
	if o, e := demux(t, att.Reader); o != "out\n" || e != "err\n" {
		t.Errorf("attach logs=1 stream=0 to a stopped container: %q %q", o, e)
	}
	att.Close()
	must(c.ContainerRestart(ctx, name, client.ContainerRestartOptions{Timeout: ptr(1)}))(t)
	if s := must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container.State; !s.Running {
		t.Errorf("inspect after restart: %+v", s)
	}
	must(c.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: ptr(1)}))(t)
	if s := must(c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}))(t).Container.State; s.Running || s.ExitCode != 137 {
		logs := must(c.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}))(t)
		o, e := demux(t, logs)
		t.Errorf("inspect after stop (sleep ignores SIGTERM as PID 1): %+v; logs %q %q", s, o, e)
	}
	must(c.ContainerRemove(ctx, name, client.ContainerRemoveOptions{}))(t)
	if _, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed container: %v, want not found", err)
	}

	// Events of that life, read back between since and now.
	evs := c.Events(ctx, client.EventsListOptions{Since: since.Format(time.RFC3339Nano), Until: time.Now().Add(time.Second).Format(time.RFC3339Nano),
		Filters: make(client.Filters).Add("container", cr.ID)})
	var actions []string
	for done := false; !done; {
		select {
		case m := <-evs.Messages:
			if m.Actor.ID != cr.ID || m.Type != "container" || m.TimeNano == 0 {
				t.Errorf("event of the wrong container or shape: %+v", m)
			}
			actions = append(actions, string(m.Action))
		case err := <-evs.Err:
			if err != nil && err != io.EOF {
				t.Errorf("events: %v", err)
			}
			done = true
		case <-time.After(10 * time.Second):
			t.Error("events with until did not end within 10s")
			done = true
		}
	}
	for _, a := range []string{"create", "start", "pause", "unpause", "rename", "update", "kill", "die", "restart", "stop", "destroy"} {
		if !slices.Contains(actions, a) {
			t.Errorf("events: no %q in %v", a, actions)
		}
	}

	sdkVolumes(t, c, img, sfx)
	sdkNetworks(t, c, img, sfx)
	sdkBuild(t, c, img)

	// Disk usage and prune.
	du := must(c.DiskUsage(ctx, client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: true}))(t)
	if du.Images.TotalCount == 0 || !slices.ContainsFunc(du.Images.Items, func(s image.Summary) bool { return s.ID == ii.ID }) {
		t.Errorf("disk usage: images %+v", du.Images)
	}
	dead := must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: img, Cmd: []string{"sh", "-c", "head -c 100000 /dev/zero > /big"}}}))(t)
	must(c.ContainerStart(ctx, dead.ID, client.ContainerStartOptions{}))(t)
	if r := <-c.ContainerWait(ctx, dead.ID, client.ContainerWaitOptions{}).Result; r.StatusCode != 0 {
		t.Fatalf("filler exited %d", r.StatusCode)
	}
	pr := must(c.ContainerPrune(ctx, client.ContainerPruneOptions{}))(t).Report
	if !slices.Contains(pr.ContainersDeleted, dead.ID) || pr.SpaceReclaimed < 100000 {
		t.Errorf("container prune: %+v", pr)
	}
	must(c.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: true}))(t)
}

func ptr[T any](v T) *T { return &v }

// sdkVersionedFields checks that each field (a dotted path) of a raw
// answer is there exactly when the request's version v is older than the
// version that dropped it.
func sdkVersionedFields(t *testing.T, v, what string, raw []byte, dropped map[string]string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for path, since := range dropped {
		var cur any = m
		for _, k := range strings.Split(path, ".") {
			obj, _ := cur.(map[string]any)
			cur = obj[k]
			if _, ok := obj[k]; !ok {
				cur = missing{}
			}
		}
		if _, gone := cur.(missing); gone != !(v < since) {
			t.Errorf("%s at API %s: %s present %v, want it before %s only", what, v, path, !gone, since)
		}
	}
}

type missing struct{}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	return must(netip.ParsePrefix(s))(t)
}

// messageTexts are the status texts of a JSON message stream.
func messageTexts(msgs []map[string]any) []string {
	var out []string
	for _, m := range msgs {
		if s, ok := m["stream"].(string); ok {
			out = append(out, s)
		}
		if s, ok := m["status"].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// sdkExec: exec as the SDK's containers' exec_run does it, with and
// without a terminal, and the exec's inspect.
func sdkExec(t *testing.T, c *client.Client, name string) {
	ctx := context.Background()
	ex := must(c.ExecCreate(ctx, name, client.ExecCreateOptions{Cmd: []string{"sh", "-c", "id -G; echo e >&2; exit 3"}, AttachStdout: true, AttachStderr: true}))(t)
	at := must(c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{}))(t)
	o, e := demux(t, at.Reader)
	at.Close()
	if !slices.Contains(strings.Fields(o), "1000") || e != "e\n" {
		t.Errorf("exec (group 1000 from GroupAdd): stdout %q stderr %q", o, e)
	}
	eventually(t, "the exec's exit code", func() error {
		if xi := must(c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}))(t); xi.Running || xi.ExitCode != 3 || xi.ContainerID == "" {
			return errors.New("exec inspect: not yet exited with 3")
		}
		return nil
	})
	// Created with a terminal, started without (the Python SDK's way):
	// the process has a terminal, the stream is multiplexed.
	ex = must(c.ExecCreate(ctx, name, client.ExecCreateOptions{Cmd: []string{"sh", "-c", "test -t 1 && echo tty"}, TTY: true, AttachStdout: true, AttachStderr: true}))(t)
	at = must(c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{}))(t)
	o, _ = demux(t, at.Reader)
	at.Close()
	if strings.TrimSpace(o) != "tty" {
		t.Errorf("exec created with a tty, started without: %q", o)
	}
	if _, err := c.ExecInspect(ctx, "nosuchexec", client.ExecInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a missing exec: %v, want not found", err)
	}
}

// sdkArchive: copy in and out, stat, diff, export and commit.
func sdkArchive(t *testing.T, c *client.Client, name, img string) {
	ctx := context.Background()
	must(c.CopyToContainer(ctx, name, client.CopyToContainerOptions{DestinationPath: "/tmp", Content: tarFiles(t, map[string]string{"hello.txt": "hi\n"}), CopyUIDGID: true}))(t)
	sp := must(c.ContainerStatPath(ctx, name, client.ContainerStatPathOptions{Path: "/tmp/hello.txt"}))(t).Stat
	if sp.Name != "hello.txt" || sp.Size != 3 || sp.Mode.Perm() != 0o640 {
		t.Errorf("stat path: %+v", sp)
	}
	if _, err := c.ContainerStatPath(ctx, name, client.ContainerStatPathOptions{Path: "/nonexistent"}); !cerrdefs.IsNotFound(err) {
		t.Errorf("stat of a missing path: %v, want not found", err)
	}
	cp := must(c.CopyFromContainer(ctx, name, client.CopyFromContainerOptions{SourcePath: "/tmp/hello.txt"}))(t)
	_, content := tarNames(t, cp.Content)
	cp.Content.Close()
	if content["hello.txt"] != "hi\n" || cp.Stat.Size != 3 {
		t.Errorf("copy out: %v stat %+v", content, cp.Stat)
	}
	diff := must(c.ContainerDiff(ctx, name, client.ContainerDiffOptions{}))(t)
	if !slices.Contains(diff.Changes, container.FilesystemChange{Path: "/tmp/hello.txt", Kind: container.ChangeAdd}) ||
		!slices.Contains(diff.Changes, container.FilesystemChange{Path: "/tmp", Kind: container.ChangeModify}) {
		t.Errorf("diff: %+v", diff.Changes)
	}
	exp := must(c.ContainerExport(ctx, name, client.ContainerExportOptions{}))(t)
	names, content := tarNames(t, exp)
	exp.Close()
	if !slices.Contains(names, "bin/busybox") || content["tmp/hello.txt"] != "hi\n" {
		t.Errorf("export: %d entries, tmp/hello.txt %q", len(names), content["tmp/hello.txt"])
	}
	com := must(c.ContainerCommit(ctx, name, client.ContainerCommitOptions{Reference: img + "-committed", Comment: "sdk commit", Author: "sdk", Changes: []string{"ENV COMMITTED=yes"}}))(t)
	ci := must(c.ImageInspect(ctx, com.ID))(t)
	if !slices.Contains(ci.Config.Env, "COMMITTED=yes") || ci.Comment != "sdk commit" || ci.Author != "sdk" || len(ci.RootFS.Layers) != 2 {
		t.Errorf("committed image: %+v config %+v", ci.InspectResponse, ci.Config)
	}
	must(c.ImageRemove(ctx, com.ID, client.ImageRemoveOptions{}))(t)
}
