package cli

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/backend"
)

func systemCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage tent"}
	cmd.AddCommand(systemDFCmd(a), systemPruneCmd(a))
	return cmd
}

// dfRow is one line of `system df`, with docker's arithmetic of what a
// prune would free.
type dfRow struct{ Type, TotalCount, Active, Size, Reclaimable string }

func dfLine(typ string, total, active int, size, reclaimable int64, percent bool) dfRow {
	r := dfRow{Type: typ, TotalCount: strconv.Itoa(total), Active: strconv.Itoa(active), Size: units.HumanSize(float64(size)),
		Reclaimable: units.HumanSize(float64(reclaimable))}
	if percent && size > 0 {
		r.Reclaimable += fmt.Sprintf(" (%d%%)", reclaimable*100/size)
	}
	return r
}

func dfRows(du *backend.DiskUsage) []any {
	var used int64
	active := 0
	for _, i := range du.Images {
		if i.Containers > 0 {
			active++
			if i.SharedSize >= 0 {
				used += i.Size - i.SharedSize
			}
		}
	}
	rows := []any{dfLine("Images", len(du.Images), active, du.LayersSize, du.LayersSize-used, true)}
	var size, free int64
	active = 0
	for _, c := range du.Containers {
		size += c.SizeRw
		if c.State == container.StateRunning {
			active++
		} else {
			free += c.SizeRw
		}
	}
	rows = append(rows, dfLine("Containers", len(du.Containers), active, size, free, true))
	size, free, active = 0, 0, 0
	for _, v := range du.Volumes {
		if v.UsageData == nil || v.UsageData.Size < 0 {
			continue
		}
		size += v.UsageData.Size
		if v.UsageData.RefCount > 0 {
			active++
		} else {
			free += v.UsageData.Size
		}
	}
	rows = append(rows, dfLine("Local Volumes", len(du.Volumes), active, size, free, true))
	size, free, active = 0, 0, 0
	for _, b := range du.BuildCache {
		if b.InUse {
			active++
		}
		if !b.Shared {
			size += b.Size
			if !b.InUse {
				free += b.Size
			}
		}
	}
	return append(rows, dfLine("Build Cache", len(du.BuildCache), active, size, free, false))
}

func systemDFCmd(a *app) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{Use: "df [OPTIONS]", Short: "Show tent disk usage", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		var du backend.DiskUsage
		if err := a.c.JSON(a.ctx, http.MethodGet, "/system/df", nil, nil, &du); err != nil {
			return apiError(err, 1)
		}
		if verbose {
			return printDFVerbose(&du)
		}
		if format == "" {
			format = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
		}
		header := map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
		return printRows(os.Stdout, format, header, dfRows(&du))
	})
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

// printDFVerbose lists every image, container, volume and cache record.
func printDFVerbose(du *backend.DiskUsage) error {
	w := tabwriter.NewWriter(os.Stdout, 10, 1, 3, ' ', 0)
	ago := func(t time.Time) string { return units.HumanDuration(time.Since(t)) + " ago" }
	size := func(n int64) string { return units.HumanSize(float64(n)) }
	fmt.Fprintln(w, "Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, i := range du.Images {
		repo, tag := "<none>", "<none>"
		if len(i.RepoTags) > 0 {
			ref := splitRef(i.RepoTags[0])
			repo, tag = ref.name(), ref.tag
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", repo, tag, strings.TrimPrefix(i.ID, "sha256:")[:12], ago(time.Unix(i.Created, 0)),
			size(i.Size), size(i.SharedSize), size(i.Size-i.SharedSize), i.Containers)
	}
	fmt.Fprintln(w, "\nContainers space usage:\n\nCONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
	for _, c := range du.Containers {
		vols := 0
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				vols++
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%q\t%d\t%s\t%s\t%s\t%s\n", c.ID[:12], c.Image, c.Command, vols, size(c.SizeRw), ago(time.Unix(c.Created, 0)),
			c.Status, strings.TrimPrefix(strings.Join(c.Names, ","), "/"))
	}
	fmt.Fprintln(w, "\nLocal Volumes space usage:\n\nVOLUME NAME\tLINKS\tSIZE")
	for _, v := range du.Volumes {
		if v.UsageData != nil {
			fmt.Fprintf(w, "%s\t%d\t%s\n", v.Name, v.UsageData.RefCount, size(v.UsageData.Size))
		}
	}
	fmt.Fprintln(w, "\nBuild cache usage: "+size(buildCacheSize(du)))
	if len(du.BuildCache) > 0 {
		fmt.Fprintln(w, "\nCACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED")
		for _, b := range du.BuildCache {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%t\n", b.ID, b.Type, size(b.Size), ago(b.CreatedAt), "", b.UsageCount, b.Shared)
		}
	}
	return w.Flush()
}

func buildCacheSize(du *backend.DiskUsage) int64 {
	var n int64
	for _, b := range du.BuildCache {
		if !b.Shared {
			n += b.Size
		}
	}
	return n
}

// systemPruneCmd removes what docker's system prune does: stopped
// containers, unused networks, dangling images (all unused ones with
// -a), the build cache, and with --volumes unused anonymous volumes.
func systemPruneCmd(a *app) *cobra.Command {
	var all, volumes, force bool
	var filters []string
	cmd := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove unused data", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		if !force {
			fmt.Print("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n")
			if volumes {
				fmt.Print("  - all anonymous volumes not used by at least one container\n")
			}
			if all {
				fmt.Print("  - all images without at least one container associated to them\n")
			} else {
				fmt.Print("  - all dangling images\n")
			}
			fmt.Print("  - all build cache\n\nAre you sure you want to continue? [y/N] ")
			var answer string
			fmt.Scanln(&answer)
			if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
				return nil
			}
		}
		var total uint64
		deleted := map[string]string{"ContainersDeleted": "Deleted Containers:", "NetworksDeleted": "Deleted Networks:",
			"VolumesDeleted": "Deleted Volumes:", "ImagesDeleted": "Deleted Images:", "CachesDeleted": "Deleted build cache objects:"}
		type step struct {
			path, list string
			filters    []string
		}
		steps := []step{{"/containers/prune", "ContainersDeleted", filters}, {"/networks/prune", "NetworksDeleted", filters}}
		if volumes {
			steps = append(steps, step{"/volumes/prune", "VolumesDeleted", filters})
		}
		imageFilters := filters
		if all {
			imageFilters = append(slices.Clone(filters), "dangling=false")
		}
		steps = append(steps, step{"/images/prune", "ImagesDeleted", imageFilters}, step{"/build/prune", "CachesDeleted", nil})
		for _, st := range steps {
			q, err := filterQuery(st.filters)
			if err != nil {
				return err
			}
			var resp map[string]any
			if err := a.c.JSON(a.ctx, http.MethodPost, st.path, q, nil, &resp); err != nil {
				return apiError(err, 1)
			}
			if items, _ := resp[st.list].([]any); len(items) > 0 {
				fmt.Println(deleted[st.list])
				for _, it := range items {
					switch v := it.(type) {
					case string:
						fmt.Println(v)
					case map[string]any: // an image prune's {"Untagged": ...} or {"Deleted": ...}
						for k, id := range v {
							fmt.Printf("%s: %v\n", strings.ToLower(k), id)
						}
					}
				}
				fmt.Println()
			}
			if n, ok := resp["SpaceReclaimed"].(float64); ok {
				total += uint64(n)
			}
		}
		fmt.Println("Total reclaimed space:", units.HumanSize(float64(total)))
		return nil
	})
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	fl.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, `Provide filter values (e.g. "label=<key>=<value>")`)
	return cmd
}
