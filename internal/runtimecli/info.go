package runtimecli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/runtime"
)

func specVersion() string { return specs.Version }

func psCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <container-id> [ps options]",
		Short: "list the processes of a container",
		Args:  minArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			pids, err := c.Pids()
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			case "table":
				return psTable(pids, args[1:])
			}
			return fmt.Errorf("invalid format option %q", format)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// psTable runs the host's ps and keeps the header and the container's lines.
func psTable(pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > col {
			if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
				fmt.Println(l)
			}
		}
	}
	return nil
}

func pauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause <container-id>",
		Short: "suspend every process of a container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func resumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume <container-id>",
		Short: "resume a paused container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "list containers",
		Args:    exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			cs, err := rt.List()
			if err != nil {
				return err
			}
			if quiet {
				for _, c := range cs {
					fmt.Println(c.ID())
				}
				return nil
			}
			switch format {
			case "json":
				out := make([]any, 0, len(cs))
				for _, c := range cs {
					out = append(out, c.State())
				}
				return json.NewEncoder(os.Stdout).Encode(out)
			case "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, c := range cs {
					s := c.State()
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			}
			return fmt.Errorf("invalid format option %q", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "display only container IDs")
	return cmd
}

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "show the features the runtime implements, as JSON",
		Args:  exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return printJSON(runtimeFeatures())
		},
	}
}

func runtimeFeatures() *features.Features {
	yes := true
	mountOpts := []string{"acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
		"exec", "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime",
		"noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
		"rbind", "relatime", "remount", "ro", "rw", "silent", "strictatime", "suid", "sync",
		"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable", "tmpcopyup"}
	mountOpts = append(mountOpts, runtime.RecursiveMountOptions()...)
	slices.Sort(mountOpts)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mountOpts,
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
			Capabilities: caps.All(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: new(bool), SystemdUser: new(bool)},
			Seccomp: &features.Seccomp{
				Enabled: &yes,
				Actions: []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
					"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs: []string{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"},
			},
			Apparmor: &features.Apparmor{Enabled: new(bool)},
			Selinux:  &features.Selinux{Enabled: new(bool)},
		},
		Annotations: map[string]string{"org.tent.runtime.version": Version},
	}
}

func specCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "write a default config.json into a bundle",
		Args:  exactArgs(0, "none"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("file %s exists: remove it first", path)
			}
			b, err := json.MarshalIndent(oci.DefaultSpec(rootless), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "path to the root of the bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "generate a configuration for a rootless container")
	return cmd
}

func updateCmd(g *globals) *cobra.Command {
	var resources string
	var memory, swap, quota, pids int64
	var shares, period uint64
	var cpus, mems string
	cmd := &cobra.Command{
		Use:   "update [flags] <container-id>",
		Short: "update a container's resource limits",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			r := &specs.LinuxResources{}
			if resources != "" {
				var b []byte
				if resources == "-" {
					var buf bytes.Buffer
					_, err = buf.ReadFrom(os.Stdin)
					b = buf.Bytes()
				} else {
					b, err = os.ReadFile(resources)
				}
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, r); err != nil {
					return fmt.Errorf("malformed resources: %w", err)
				}
			}
			f := cmd.Flags()
			mem := func() *specs.LinuxMemory {
				if r.Memory == nil {
					r.Memory = &specs.LinuxMemory{}
				}
				return r.Memory
			}
			cpu := func() *specs.LinuxCPU {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				return r.CPU
			}
			if f.Changed("memory") {
				mem().Limit = &memory
			}
			if f.Changed("memory-swap") {
				mem().Swap = &swap
			}
			if f.Changed("cpu-shares") {
				cpu().Shares = &shares
			}
			if f.Changed("cpu-quota") {
				cpu().Quota = &quota
			}
			if f.Changed("cpu-period") {
				cpu().Period = &period
			}
			if f.Changed("cpuset-cpus") {
				cpu().Cpus = cpus
			}
			if f.Changed("cpuset-mems") {
				cpu().Mems = mems
			}
			if f.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: &pids}
			}
			return c.Update(r)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resources, "resources", "r", "", "path to a file with the resources as JSON (- for stdin)")
	f.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	f.Int64Var(&swap, "memory-swap", 0, "memory plus swap limit in bytes (-1: unlimited)")
	f.Uint64Var(&shares, "cpu-shares", 0, "CPU shares")
	f.Int64Var(&quota, "cpu-quota", 0, "CFS quota in microseconds")
	f.Uint64Var(&period, "cpu-period", 0, "CFS period in microseconds")
	f.StringVar(&cpus, "cpuset-cpus", "", "CPUs to run on")
	f.StringVar(&mems, "cpuset-mems", "", "memory nodes to use")
	f.Int64Var(&pids, "pids-limit", 0, "maximum number of processes")
	return cmd
}
