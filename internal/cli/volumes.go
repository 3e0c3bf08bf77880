package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/spf13/cobra"
)

// volumeCmd is `tent volume`: create, ls, inspect, rm, prune.
func volumeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(volumeCreateCmd(a), volumeLsCmd(a), inspectKindCmd(a, "volume"), volumeRmCmd(a), volumePruneCmd(a))
	return cmd
}

func volumeCreateCmd(a *app) *cobra.Command {
	var name, driver string
	var labels, opts []string
	cmd := &cobra.Command{Use: "create [OPTIONS] [VOLUME]", Short: "Create a volume", Args: cobra.MaximumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		if len(args) == 1 {
			if name != "" && name != args[0] {
				return statusError{code: 1, msg: "conflicting options: cannot specify a volume-name through both --name and as a positional arg"}
			}
			name = args[0]
		}
		req := volume.CreateRequest{Name: name, Driver: driver, Labels: keyValues(labels), DriverOpts: keyValues(opts)}
		var v volume.Volume
		if err := a.c.JSON(a.ctx, http.MethodPost, "/volumes/create", nil, req, &v); err != nil {
			return apiError(err, 1)
		}
		fmt.Println(v.Name)
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "specify volume name")
	f.StringVarP(&driver, "driver", "d", "local", "specify volume driver name")
	f.StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	f.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options")
	return cmd
}

// keyValues turns key=value flags into a map (a bare key has "").
func keyValues(list []string) map[string]string {
	if len(list) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func volumeLsCmd(a *app) *cobra.Command {
	var quiet bool
	var format string
	var filter []string
	cmd := &cobra.Command{Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List volumes", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		q, err := filterQuery(filter)
		if err != nil {
			return err
		}
		var list volume.ListResponse
		if err := a.c.JSON(a.ctx, http.MethodGet, "/volumes", q, nil, &list); err != nil {
			return apiError(err, 1)
		}
		if quiet {
			format = "{{.Name}}"
		}
		if format == "" {
			format = "table {{.Driver}}\t{{.Name}}"
		}
		type row struct{ Name, Driver, Scope, Mountpoint, Labels string }
		var rows []any
		for _, v := range list.Volumes {
			var labels []string
			for k, val := range v.Labels {
				labels = append(labels, k+"="+val)
			}
			rows = append(rows, row{Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, Labels: strings.Join(labels, ",")})
		}
		header := map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS"}
		return printRows(os.Stdout, format, header, rows)
	})
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	f.StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	f.StringArrayVarP(&filter, "filter", "f", nil, "provide filter values (e.g. 'dangling=true')")
	return cmd
}

func volumeRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{Use: "rm [OPTIONS] VOLUME [VOLUME...]", Aliases: []string{"remove"}, Short: "Remove one or more volumes", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{"force": {strconv.FormatBool(force)}}
		return forEach(args, func(name string) error {
			return a.c.JSON(a.ctx, http.MethodDelete, "/volumes/"+name, q, nil, nil)
		})
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")
	return cmd
}

func volumePruneCmd(a *app) *cobra.Command {
	var force, all bool
	var filter []string
	cmd := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove unused local volumes", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
		if all {
			warning = "WARNING! This will remove all local volumes not used by at least one container."
			filter = append(filter, "all=true")
		}
		if !force && !confirm(warning) {
			return nil
		}
		q, err := filterQuery(filter)
		if err != nil {
			return err
		}
		var r volume.PruneReport
		if err := a.c.JSON(a.ctx, http.MethodPost, "/volumes/prune", q, nil, &r); err != nil {
			return apiError(err, 1)
		}
		printPruned("Deleted Volumes:", r.VolumesDeleted, r.SpaceReclaimed)
		return nil
	})
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	f.StringArrayVar(&filter, "filter", nil, "provide filter values (e.g. 'label=<label>')")
	return cmd
}

// printPruned is docker's prune report.
func printPruned(title string, deleted []string, reclaimed uint64) {
	if len(deleted) > 0 {
		fmt.Println(title)
		for _, d := range deleted {
			fmt.Println(d)
		}
		fmt.Println()
	}
	fmt.Println("Total reclaimed space:", units.HumanSize(float64(reclaimed)))
}

// parseMount reads --mount's CSV (type=volume,source=data,target=/data,
// readonly, volume-nocopy, bind-propagation=..., tmpfs-size=...).
func parseMount(spec string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	for _, field := range strings.Split(spec, ",") {
		k, v, hasValue := strings.Cut(field, "=")
		bad := fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		switch strings.ToLower(k) {
		case "type":
			m.Type = mount.Type(v)
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			ro := !hasValue || v == "true" || v == "1"
			if hasValue && !ro && v != "false" && v != "0" {
				return m, fmt.Errorf("invalid value for %s: %s", k, v)
			}
			m.ReadOnly = ro
		case "volume-nocopy":
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.NoCopy = !hasValue || v == "true" || v == "1"
		case "bind-propagation":
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v)}
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", k, v)
			}
			m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: n}
		default:
			if !hasValue {
				return m, bad
			}
			return m, fmt.Errorf("unexpected key '%s' in '%s'", k, field)
		}
	}
	if m.Target == "" {
		return m, fmt.Errorf("target is required")
	}
	return m, nil
}
