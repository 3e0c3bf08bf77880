package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/spec"
	"golang.org/x/sys/unix"
)

// run runs a RUN step as a container of the engine's and takes its
// writable layer as the stage's next layer.
func (sr *stageRun) run(c *instructions.RunCommand) error {
	if sec := instructions.GetSecurity(c); sec != "" && sec != "sandbox" {
		return fmt.Errorf("RUN --security=%s is not supported: %w", sec, errdefs.ErrNotImplemented)
	}
	argv, err := sr.runArgs(c)
	if err != nil {
		return err
	}
	network := sr.o.NetworkMode
	switch n := instructions.GetNetwork(c); n {
	case "", "default":
	case "none", "host":
		network = n
	default:
		return fmt.Errorf("RUN --network=%s: unknown network mode: %w", n, errdefs.ErrInvalidArgument)
	}
	mounts := instructions.GetMounts(c)
	env := sr.runEnv()
	// The step's cache key: its parent, command, environment (the ARGs it
	// sees are in it), network and mounts, and the content of what its
	// bind mounts bring in from the context or another stage.
	inputs, err := sr.mountInputs(mounts)
	if err != nil {
		return err
	}
	key := cacheKey(sr.cur.id, "run", argv, env, network, mounts, inputs)
	return sr.commitOrReuse(key, func() (string, bool, error) {
		return sr.history(argv), false, sr.runStep(argv, env, network, mounts)
	})
}

// runArgs is the step's command line: exec form as is, shell form with
// the stage's shell; a heredoc that is the whole command is its script.
func (sr *stageRun) runArgs(c *instructions.RunCommand) ([]string, error) {
	if len(c.Files) == 0 {
		return sr.shellArgs(c.ShellDependantCmdLine), nil
	}
	if len(c.Files) == 1 && c.PrependShell && len(c.CmdLine) == 1 {
		if h, err := parser.ParseHeredoc(c.CmdLine[0]); err == nil && h != nil && h.Name == c.Files[0].Name {
			script := c.Files[0].Data
			if c.Files[0].Chomp {
				script = parser.ChompHeredocContent(script)
			}
			return sr.shellArgs(instructions.ShellDependantCmdLine{CmdLine: []string{script}, PrependShell: true}), nil
		}
	}
	return nil, fmt.Errorf("RUN with heredocs other than the command's own script is not supported yet: %w", errdefs.ErrNotImplemented)
}

// history is a RUN step's history text, BuildKit's form (with the ARGs
// it saw, "|1 NAME=value").
func (sr *stageRun) history(argv []string) string {
	var b strings.Builder
	b.WriteString("RUN ")
	if len(sr.args) > 0 {
		fmt.Fprintf(&b, "|%d %s ", len(sr.args), strings.Join(sr.args, " "))
	}
	b.WriteString(strings.Join(argv, " "))
	b.WriteString(" # buildkit")
	return b.String()
}

// runStep runs argv in a container of the current state and commits its
// writable layer.
func (sr *stageRun) runStep(argv, env []string, network string, mounts []*instructions.Mount) error {
	cfg := &sr.cur.conf.Config
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(network), ExtraHosts: sr.o.ExtraHosts,
		Resources: sr.o.Resources, ShmSize: sr.o.ShmSize}
	var release []func()
	defer func() {
		for i := len(release) - 1; i >= 0; i-- {
			release[i]()
		}
	}()
	skip := map[string]bool{}
	for _, m := range mounts {
		hm, done, err := sr.hostMount(m, env)
		if err != nil {
			return err
		}
		if done != nil {
			release = append(release, done)
		}
		hc.Mounts = append(hc.Mounts, hm)
	}
	// Mount points made for the step (the engine's /etc files, a mount's
	// target) are no part of its layer, where the image had none.
	targets := append([]string(nil), spec.EngineMountpoints...)
	for _, m := range hc.Mounts {
		targets = append(targets, m.Target)
	}
	if err := sr.withView(&sr.cur, func(root string) error {
		for _, t := range targets {
			for p := path.Clean(t); p != "/" && p != "."; p = path.Dir(p) {
				if _, err := os.Lstat(filepath.Join(root, p)); errors.Is(err, fs.ErrNotExist) {
					skip[strings.TrimPrefix(p, "/")] = true
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	rcfg := &container.Config{Image: sr.cur.id.String(), Entrypoint: argv[:1], Cmd: argv[1:], Env: env,
		User: cfg.User, WorkingDir: cfg.WorkingDir, Labels: map[string]string{"tent.build": "step"}}
	ran, err := sr.b.be.RunStep(sr.ctx, RunRequest{Image: sr.cur.id, Config: rcfg, Host: hc, Output: streamWriter(sr.out.Stream),
		Created: func(id string) { sr.out.Stream(fmt.Sprintf(" ---> Running in %s\n", id[:12])) }})
	if err != nil {
		return err
	}
	defer sr.b.be.RemoveStep(ran.ID)
	if ran.ExitCode != 0 {
		return &StepError{Cmd: argv, Code: ran.ExitCode}
	}
	parent := sr.cur.conf.RootFS.DiffIDs
	diffID, err := sr.b.images.CommitLayer(ran.Layer, parent, skip)
	if err != nil {
		return err
	}
	sr.cur.conf.RootFS.DiffIDs = append(append(parent[:0:0], parent...), diffID)
	sr.out.Stream(fmt.Sprintf("Removing intermediate container %s\n", ran.ID[:12]))
	return nil
}

// mountInputs digests what a step's bind mounts bring from the context
// or another stage (a changed file there must rerun the step).
func (sr *stageRun) mountInputs(mounts []*instructions.Mount) ([]string, error) {
	var out []string
	for _, m := range mounts {
		if m.Type != instructions.MountTypeBind {
			continue
		}
		if m.From != "" {
			j, ok := sr.stageRef(m.From, sr.index)
			if !ok {
				return nil, fmt.Errorf("RUN --mount from=%s: only stages can be mounted yet: %w", m.From, errdefs.ErrNotImplemented)
			}
			out = append(out, sr.results[j].id.String()+":"+m.Source)
			continue
		}
		src, err := sr.bc.path(m.Source)
		if err != nil {
			return nil, err
		}
		sum, err := treeDigest(src, false)
		if err != nil {
			return nil, fmt.Errorf("RUN --mount source=%s: %w: %w", m.Source, err, errdefs.ErrInvalidArgument)
		}
		out = append(out, sum)
	}
	return out, nil
}

// hostMount turns a RUN --mount into a mount of the step's container;
// done (if set) releases what it took.
func (sr *stageRun) hostMount(m *instructions.Mount, env []string) (mount.Mount, func(), error) {
	target := m.Target
	if target != "" && !path.IsAbs(target) {
		target = path.Join(orRoot(sr.cur.conf.Config.WorkingDir), target)
	}
	switch m.Type {
	case instructions.MountTypeBind:
		if target == "" {
			return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=bind needs a target: %w", errdefs.ErrInvalidArgument)
		}
		var bm mount.Mount
		var done func()
		if m.From != "" {
			var err error
			if bm, done, err = sr.stageBind(m, target); err != nil {
				return mount.Mount{}, nil, err
			}
		} else {
			src, err := sr.bc.path(m.Source)
			if err != nil {
				return mount.Mount{}, nil, err
			}
			if _, err := os.Stat(src); err != nil {
				return mount.Mount{}, nil, fmt.Errorf("RUN --mount source=%s: not in the build context: %w", m.Source, errdefs.ErrInvalidArgument)
			}
			bm = mount.Mount{Type: mount.TypeBind, Source: src, Target: target, ReadOnly: true}
		}
		if !m.ReadOnly {
			return sr.throwaway(bm, done)
		}
		return bm, done, nil
	case instructions.MountTypeCache:
		return sr.cacheMount(m, target)
	case instructions.MountTypeTmpfs:
		return mount.Mount{Type: mount.TypeTmpfs, Target: target, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: m.SizeLimit}}, nil, nil
	case instructions.MountTypeSecret:
		return sr.secretMount(m, target)
	}
	return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=%s is not supported yet: %w", m.Type, errdefs.ErrNotImplemented)
}

func orRoot(dir string) string {
	if dir == "" {
		return "/"
	}
	return dir
}

// throwaway makes a read-only bind writable for one step, whose writes
// the build then forgets (RUN --mount=type=bind,rw, as BuildKit: the
// step sees what it wrote, nothing else does, neither the context nor a
// layer): an overlay with an upper directory of its own over a
// directory, a copy of a file. done, if set, releases the source.
func (sr *stageRun) throwaway(bm mount.Mount, done func()) (mount.Mount, func(), error) {
	fail := func(err error) (mount.Mount, func(), error) {
		if done != nil {
			done()
		}
		return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=bind,rw: %w", err)
	}
	tmp, err := sr.work.mkdirTemp("rw-")
	if err != nil {
		return fail(err)
	}
	release := func() {
		snapshot.UnmountBelow(tmp)
		os.RemoveAll(tmp)
		if done != nil {
			done()
		}
	}
	fi, err := os.Stat(bm.Source)
	if err != nil {
		release()
		return fail(err)
	}
	if !fi.IsDir() {
		cp := filepath.Join(tmp, "file")
		err := copyFile(bm.Source, cp)
		if err == nil {
			err = os.Chmod(cp, fi.Mode().Perm())
		}
		if err != nil {
			release()
			return fail(err)
		}
		bm.Source, bm.ReadOnly = cp, false
		return bm, release, nil
	}
	// The source is bound to a path of the engine's own first: overlay's
	// options cannot hold a path with a comma or a colon.
	lower, upper, work, merged := filepath.Join(tmp, "l"), filepath.Join(tmp, "u"), filepath.Join(tmp, "w"), filepath.Join(tmp, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			release()
			return fail(err)
		}
	}
	if err := unix.Mount(bm.Source, lower, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		release()
		return fail(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		release()
		return fail(err)
	}
	bm.Source, bm.ReadOnly = merged, false
	return bm, release, nil
}

// stageBind mounts a path of an earlier stage's file system, read-only.
func (sr *stageRun) stageBind(m *instructions.Mount, target string) (mount.Mount, func(), error) {
	j, ok := sr.stageRef(m.From, sr.index)
	if !ok {
		return mount.Mount{}, nil, fmt.Errorf("RUN --mount from=%s: only stages can be mounted yet: %w", m.From, errdefs.ErrNotImplemented)
	}
	// The stage's root stays mounted (a read-only view) while the step runs.
	ready, release := make(chan error, 1), make(chan struct{})
	var root string
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		err := sr.withView(sr.results[j], func(r string) error {
			root = r
			ready <- nil
			<-release
			return nil
		})
		if err != nil {
			ready <- err
		}
	}()
	if err := <-ready; err != nil {
		return mount.Mount{}, nil, err
	}
	done := func() { close(release); <-finished }
	src, err := secureJoin(root, m.Source)
	if err != nil {
		done()
		return mount.Mount{}, nil, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: src, Target: target, ReadOnly: true}, done, nil
}

// cacheMount is a directory kept across builds (by id, default its
// target), for package managers' caches; "locked" and "private" sharing
// let one step at a time use it.
func (sr *stageRun) cacheMount(m *instructions.Mount, target string) (mount.Mount, func(), error) {
	if target == "" {
		return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=cache needs a target: %w", errdefs.ErrInvalidArgument)
	}
	if m.From != "" {
		return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=cache,from= is not supported yet: %w", errdefs.ErrNotImplemented)
	}
	id := m.CacheID
	if id == "" {
		id = target
	}
	dir := filepath.Join(sr.b.cacheMountsDir(), cacheKey("", id)[len("sha256:"):][:32])
	if err := os.Mkdir(dir, 0o755); err == nil {
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		mode := os.FileMode(0o755)
		if m.Mode != nil {
			mode = os.FileMode(*m.Mode)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return mount.Mount{}, nil, err
		}
		if err := os.Chmod(dir, mode); err != nil {
			return mount.Mount{}, nil, err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return mount.Mount{}, nil, err
	}
	var done func()
	if m.CacheSharing == instructions.MountSharingLocked || m.CacheSharing == instructions.MountSharingPrivate {
		sr.b.cacheMu.Lock()
		l := sr.b.cacheLocks[dir]
		if l == nil {
			l = &sync.Mutex{}
			sr.b.cacheLocks[dir] = l
		}
		sr.b.cacheMu.Unlock()
		l.Lock()
		done = l.Unlock
	}
	return mount.Mount{Type: mount.TypeBind, Source: dir, Target: target, ReadOnly: m.ReadOnly}, done, nil
}

// secretMount puts a secret of the build's at /run/secrets/<id> (or the
// target) for the step, from a file of the build's work directory: it
// never reaches a layer, the cache key or the history.
func (sr *stageRun) secretMount(m *instructions.Mount, target string) (mount.Mount, func(), error) {
	id := m.CacheID
	if id == "" && target != "" {
		id = path.Base(target)
	}
	if id == "" {
		return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=secret needs an id or a target: %w", errdefs.ErrInvalidArgument)
	}
	if target == "" {
		target = "/run/secrets/" + id
	}
	if m.Env != nil {
		return mount.Mount{}, nil, fmt.Errorf("RUN --mount=type=secret,env= is not supported yet: %w", errdefs.ErrNotImplemented)
	}
	data, ok := sr.o.Secrets[id]
	if !ok {
		if m.Required {
			return mount.Mount{}, nil, fmt.Errorf("secret %s: not provided (tent build --secret id=%s,src=FILE): %w", id, id, errdefs.ErrInvalidArgument)
		}
		data = nil
	}
	f, err := sr.work.createTemp("secret-")
	if err != nil {
		return mount.Mount{}, nil, err
	}
	name := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	mode := os.FileMode(0o400)
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode)
	}
	if err == nil {
		err = os.Chmod(name, mode)
	}
	if err == nil && (m.UID != nil || m.GID != nil) {
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		err = os.Chown(name, uid, gid)
	}
	if err != nil {
		os.Remove(name)
		return mount.Mount{}, nil, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: name, Target: target, ReadOnly: true}, func() { os.Remove(name) }, nil
}
