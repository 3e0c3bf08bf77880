package builder

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/signals"
)

// dispatch runs one instruction of the stage.
func (sr *stageRun) dispatch(c instructions.Command) error {
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		lex := sr.lex()
		env := sr.expansionEnv()
		if err := e.Expand(func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, env)
			return s, err
		}); err != nil {
			return fmt.Errorf("%s: %w: %w", c.Name(), err, errdefs.ErrInvalidArgument)
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		lex := sr.lex()
		lex.RawQuotes, lex.RawEscapes = true, true
		env := sr.expansionEnv()
		if err := e.ExpandRaw(func(word string) (string, error) {
			s, _, err := lex.ProcessWord(word, env)
			return s, err
		}); err != nil {
			return fmt.Errorf("%s: %w: %w", c.Name(), err, errdefs.ErrInvalidArgument)
		}
	}
	cfg := &sr.cur.conf.Config
	switch c := c.(type) {
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, ok, err := sr.argValue(kv, nil)
			if err != nil {
				return err
			}
			if !ok {
				// ARG NAME takes the global ARG's value, if there is one.
				for _, g := range sr.global {
					if k, gv, _ := strings.Cut(g, "="); k == kv.Key {
						v, ok = gv, true
					}
				}
			}
			if ok {
				sr.args = setEnv(sr.args, kv.Key, v)
			}
		}
		return nil // ARG changes no image (the steps that use it do)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
		return sr.meta(c)
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
		return sr.meta(c)
	case *instructions.MaintainerCommand:
		sr.cur.conf.Author = c.Maintainer
		return sr.meta(c)
	case *instructions.CmdCommand:
		cfg.Cmd = sr.shellArgs(c.ShellDependantCmdLine)
		sr.cmdSet = true
		return sr.meta(c)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = sr.shellArgs(c.ShellDependantCmdLine)
		if len(cfg.Entrypoint) == 0 {
			cfg.Entrypoint = nil
		}
		if !sr.cmdSet {
			cfg.Cmd = nil // the base image's CMD does not go with a new ENTRYPOINT
		}
		return sr.meta(c)
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			ports, err := expandPorts(p)
			if err != nil {
				return err
			}
			for _, port := range ports {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
		return sr.meta(c)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string: %w", errdefs.ErrInvalidArgument)
			}
			cfg.Volumes[v] = struct{}{}
		}
		return sr.meta(c)
	case *instructions.UserCommand:
		cfg.User = c.User
		return sr.meta(c)
	case *instructions.StopSignalCommand:
		if _, err := signals.Parse(c.Signal); err != nil {
			return fmt.Errorf("STOPSIGNAL: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		cfg.StopSignal = c.Signal
		return sr.meta(c)
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
		return sr.meta(c)
	case *instructions.HealthCheckCommand:
		h := *c.Health
		cfg.Healthcheck = &h
		return sr.meta(c)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		return sr.meta(c)
	case *instructions.WorkdirCommand:
		return sr.workdir(c)
	case *instructions.RunCommand:
		return sr.run(c)
	case *instructions.CopyCommand:
		return sr.copy(copyRequest{src: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			link: c.Link, exclude: c.ExcludePatterns, parents: c.Parents})
	case *instructions.AddCommand:
		if c.KeepGitDir != nil {
			return fmt.Errorf("ADD --keep-git-dir: git sources are not supported yet: %w", errdefs.ErrNotImplemented)
		}
		return sr.copy(copyRequest{src: c.SourcesAndDest, add: true, chown: c.Chown, chmod: c.Chmod,
			link: c.Link, exclude: c.ExcludePatterns, checksum: c.Checksum, unpack: c.Unpack})
	}
	return fmt.Errorf("%s is not supported yet: %w", c.Name(), errdefs.ErrNotImplemented)
}

// meta records a step that changes only the config: a new state with an
// empty-layer history entry, reused from the cache when the same step
// was made on the same parent.
func (sr *stageRun) meta(c instructions.Command) error {
	createdBy := historyText(c)
	key := cacheKey(sr.cur.id, "meta", createdBy, sr.cur.conf.Config, sr.cur.conf.Author)
	return sr.commitOrReuse(key, func() (string, bool, error) { return createdBy, true, nil })
}

// commitOrReuse takes the cached result of key, else makes the step's
// change (which returns its history text and whether it added no layer)
// and records the result under key.
func (sr *stageRun) commitOrReuse(key string, change func() (string, bool, error)) error {
	if hit, ok := sr.b.cached(key, sr.o.NoCache); ok {
		sr.out.Stream(" ---> Using cache\n")
		sr.cur = hit
		return nil
	}
	if sr.cacheOnly {
		return errNotCached
	}
	createdBy, empty, err := change()
	if err != nil {
		return err
	}
	return sr.commit(key, createdBy, empty)
}

// commit stores the stage's current config (with a history entry when
// createdBy is set) as a cache image, and remembers it under key.
func (sr *stageRun) commit(key, createdBy string, empty bool) error {
	if sr.cacheOnly {
		return errNotCached
	}
	created := now()
	conf := &sr.cur.conf
	conf.Created = &created
	if createdBy != "" {
		conf.History = append(conf.History, ocispec.History{Created: &created, CreatedBy: createdBy, EmptyLayer: empty,
			Comment: "buildkit.dockerfile.v0"})
	}
	img, err := sr.b.images.Create(conf, true)
	if err != nil {
		return err
	}
	sr.cur.id = img.ID
	if key != "" {
		return sr.b.remember(key, img.ID)
	}
	return nil
}

// workdir sets the working directory (relative to the one before) and
// makes it, when it is missing, in a layer of its own (as BuildKit).
func (sr *stageRun) workdir(c *instructions.WorkdirCommand) error {
	cfg := &sr.cur.conf.Config
	dir := c.Path
	if !path.IsAbs(dir) {
		base := cfg.WorkingDir
		if base == "" {
			base = "/"
		}
		dir = path.Join(base, dir)
	}
	dir = path.Clean(dir)
	cfg.WorkingDir = dir
	createdBy := "WORKDIR " + dir
	key := cacheKey(sr.cur.id, "workdir", dir)
	return sr.commitOrReuse(key, func() (string, bool, error) {
		made, err := sr.changeFS(func(root string) (bool, error) { return mkdirAllIn(root, dir, -1, -1) })
		return createdBy, !made, err
	})
}

// expandPorts turns an EXPOSE argument ("80", "80/udp", "8000-8002") into
// docker's port keys ("80/tcp", ...).
func expandPorts(p string) ([]string, error) {
	spec, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s: %w", proto, errdefs.ErrInvalidArgument)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || start == 0 {
		return nil, fmt.Errorf("invalid containerPort: %s: %w", spec, errdefs.ErrInvalidArgument)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid containerPort: %s: %w", spec, errdefs.ErrInvalidArgument)
		}
	}
	var out []string
	for n := start; n <= end; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// cacheKey digests a step: its parent state and the step's own parts.
func cacheKey(parent digest.Digest, parts ...any) string {
	b, _ := json.Marshal(append([]any{parent.String()}, parts...))
	return digest.FromBytes(b).String()
}

// historyText is a metadata step as its history shows it: with its
// variables expanded.
// sourceText is an instruction as the Dockerfile wrote it.
func sourceText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

func historyText(c instructions.Command) string {
	pairs := func(kvs instructions.KeyValuePairs) string {
		var out []string
		for _, kv := range kvs {
			out = append(out, kv.String())
		}
		return strings.Join(out, " ")
	}
	switch c := c.(type) {
	case *instructions.EnvCommand:
		return "ENV " + pairs(c.Env)
	case *instructions.LabelCommand:
		return "LABEL " + pairs(c.Labels)
	case *instructions.UserCommand:
		return "USER " + c.User
	case *instructions.ExposeCommand:
		return "EXPOSE " + strings.Join(c.Ports, " ")
	case *instructions.VolumeCommand:
		return "VOLUME " + strings.Join(c.Volumes, " ")
	case *instructions.StopSignalCommand:
		return "STOPSIGNAL " + c.Signal
	}
	return sourceText(c)
}
