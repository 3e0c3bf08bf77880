package spec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/seccomp"
)

// defaultCaps are the capabilities docker gives a container.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// capabilities applies --privileged, --cap-add and --cap-drop to docker's
// default set. Names may omit CAP_ and may be "ALL".
func capabilities(hc *container.HostConfig) ([]string, error) {
	if hc.Privileged {
		return caps.Bounding(), nil
	}
	norm := func(list []string) ([]string, error) {
		var out []string
		for _, n := range list {
			n = strings.ToUpper(n)
			if n == "ALL" {
				out = append(out, "ALL")
				continue
			}
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if _, err := caps.Parse(n); err != nil {
				return nil, fmt.Errorf("unknown capability: %q: %w", n, errdefs.ErrInvalidArgument)
			}
			out = append(out, n)
		}
		return out, nil
	}
	add, err := norm(hc.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, err := norm(hc.CapDrop)
	if err != nil {
		return nil, err
	}
	set := slices.Clone(defaultCaps)
	if slices.Contains(drop, "ALL") {
		set = nil
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drop, c) })
	if slices.Contains(add, "ALL") {
		return caps.Bounding(), nil
	}
	for _, c := range add {
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	return set, nil
}

// seccompProfile picks the seccomp filter: docker's default, none
// ("seccomp=unconfined"), or a docker-format profile given inline (the
// docker CLI reads the file and sends its content).
func seccompProfile(profile string, capList []string) (*specs.LinuxSeccomp, error) {
	switch profile {
	case "":
		return seccomp.DefaultProfile(capList), nil
	case "unconfined":
		return nil, nil
	}
	return parseDockerSeccomp([]byte(profile), capList)
}

// SecurityOpts are a container's --security-opt settings.
type SecurityOpts struct {
	NoNewPrivileges bool
	Seccomp         string // "" (the default profile), "unconfined" or a profile's JSON
	AppArmor        string // "" or a profile name; "unconfined"
}

// ParseSecurityOpts reads --security-opt values as dockerd does (KEY=VALUE,
// or the older KEY:VALUE), and refuses what this host cannot honour
// rather than ignoring it: an AppArmor profile where AppArmor is off,
// SELinux labels (but label=disable, which asks for none).
func ParseSecurityOpts(opts []string) (SecurityOpts, error) {
	var o SecurityOpts
	for _, opt := range opts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok && k != "no-new-privileges" {
			return o, fmt.Errorf("invalid --security-opt 1: %q: %w", opt, errdefs.ErrInvalidArgument)
		}
		switch k {
		case "no-new-privileges":
			o.NoNewPrivileges = true
			if ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
				}
				o.NoNewPrivileges = b
			}
		case "seccomp":
			o.Seccomp = v
		case "apparmor":
			if v != "unconfined" && !runtime.AppArmorEnabled() {
				return o, fmt.Errorf("--security-opt apparmor=%s: AppArmor is not enabled on this host: %w", v, errdefs.ErrInvalidArgument)
			}
			o.AppArmor = v
		case "label":
			if v != "disable" {
				return o, fmt.Errorf("--security-opt label=%s: SELinux labels are not supported (this host has no SELinux): %w", v, errdefs.ErrNotImplemented)
			}
		default:
			return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	return o, nil
}

// dockerSeccomp is docker's seccomp profile format.
type dockerSeccomp struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []specs.Arch             `json:"architectures,omitempty"`
	ArchMap         []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap,omitempty"`
	Syscalls []struct {
		specs.LinuxSyscall
		Name     string `json:"name,omitempty"`
		Includes struct {
			Caps []string `json:"caps,omitempty"`
		} `json:"includes"`
		Excludes struct {
			Caps []string `json:"caps,omitempty"`
		} `json:"excludes"`
	} `json:"syscalls"`
}

func parseDockerSeccomp(b []byte, capList []string) (*specs.LinuxSeccomp, error) {
	var p dockerSeccomp
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decoding seccomp profile failed: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile has no defaultAction: %w", errdefs.ErrInvalidArgument)
	}
	out := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet, Architectures: p.Architectures}
	for _, m := range p.ArchMap {
		out.Architectures = append(out.Architectures, m.Arch)
		out.Architectures = append(out.Architectures, m.SubArches...)
	}
	has := func(list []string) bool {
		for _, c := range list {
			if slices.Contains(capList, c) {
				return true
			}
		}
		return false
	}
	for _, sc := range p.Syscalls {
		if len(sc.Includes.Caps) > 0 && !has(sc.Includes.Caps) {
			continue
		}
		if len(sc.Excludes.Caps) > 0 && has(sc.Excludes.Caps) {
			continue
		}
		rule := sc.LinuxSyscall
		if sc.Name != "" {
			rule.Names = append(rule.Names, sc.Name)
		}
		out.Syscalls = append(out.Syscalls, rule)
	}
	if _, err := seccomp.Compile(out); err != nil {
		return nil, fmt.Errorf("seccomp profile: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return out, nil
}
