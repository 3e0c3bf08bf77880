package cli

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/client"
	"golang.org/x/term"
)

// imageRow is one line of `images`, with docker's --format field names.
type imageRow struct {
	Repository, Tag, ID, Digest, CreatedSince, CreatedAt, Size, Containers string
}

func imagesCmd(a *app) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
	var filter []string
	cmd := &cobra.Command{Use: "images [OPTIONS] [REPOSITORY[:TAG]]", Short: "List images", Args: cobra.MaximumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		if len(args) == 1 {
			filter = append(filter, "reference="+args[0])
		}
		q := url.Values{"all": {strconv.FormatBool(all)}}
		if fs, err := filtersParam(filter); err != nil {
			return err
		} else if fs != "" {
			q.Set("filters", fs)
		}
		var list []image.Summary
		if err := a.c.JSON(a.ctx, http.MethodGet, "/images/json", q, nil, &list); err != nil {
			return apiError(err, 1)
		}
		if quiet {
			format = "{{.ID}}"
		}
		if format == "" {
			format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
		}
		var rows []any
		seen := map[string]bool{}
		for _, img := range list {
			id := img.ID
			if !noTrunc {
				id = strings.TrimPrefix(id, "sha256:")[:12]
			}
			created := time.Unix(img.Created, 0)
			row := imageRow{ID: id, CreatedSince: units.HumanDuration(time.Since(created)) + " ago",
				CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"), Size: units.HumanSizeWithPrecision(float64(img.Size), 3),
				Containers: strconv.FormatInt(img.Containers, 10), Digest: "<none>"}
			tags := img.RepoTags
			if len(tags) == 0 {
				tags = []string{"<none>:<none>"}
			}
			for _, t := range tags {
				r := row
				i := strings.LastIndex(t, ":")
				r.Repository, r.Tag = t[:i], t[i+1:]
				if quiet && seen[r.ID] {
					continue
				}
				seen[r.ID] = true
				rows = append(rows, r)
			}
		}
		header := map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
			"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS"}
		return printRows(os.Stdout, format, header, rows)
	})
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all images")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	f.StringArrayVarP(&filter, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

// imageCmd is `tent image ...`: the image verbs again, and bootstrap.
func imageCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := imagesCmd(a)
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := rmiCmd(a)
	rm.Use = "rm [OPTIONS] IMAGE [IMAGE...]"
	cmd.AddCommand(ls, rm, importCmd(a), loadCmd(a), saveCmd(a), tagCmd(a), bootstrapCmd(a), pullCmd(a), pushCmd(a),
		inspectKindCmd(a, "image"), historyCmd(a), pruneCmd(a, "images"))
	return cmd
}

func importCmd(a *app) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{Use: "import [OPTIONS] file|- [REPOSITORY[:TAG]]", Short: "Import the contents from a tarball to create a filesystem image", Args: cobra.RangeArgs(1, 2)}
	cmd.RunE = a.runE(func(args []string) error {
		var in io.Reader = os.Stdin
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			defer f.Close()
			in = f
		}
		name := ""
		if len(args) == 2 {
			name = args[1]
		}
		id, err := a.importTar(in, name, changes, message, platform)
		if err != nil {
			return err
		}
		fmt.Println(id)
		return nil
	})
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "the platform the image is for, os[/arch[/variant]] (default: the host's)")
	return cmd
}

func (a *app) importTar(in io.Reader, name string, changes []string, message, platform string) (string, error) {
	q := url.Values{"fromSrc": {"-"}, "changes": changes, "message": {message}}
	if platform != "" {
		q.Set("platform", platform)
	}
	if name != "" {
		q.Set("repo", name) // the daemon parses it (and answers a bad one)
	}
	var out struct{ Status string }
	resp, err := a.c.Do(a.ctx, http.MethodPost, "/images/create", q, in, "application/x-tar")
	if err != nil {
		return "", apiError(err, 1)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.Status, nil
}

func loadCmd(a *app) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{Use: "load [OPTIONS]", Short: "Load an image from a tar archive or STDIN", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		var in io.Reader = os.Stdin
		if input != "" {
			f, err := os.Open(input)
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			defer f.Close()
			in = f
		} else if term.IsTerminal(int(os.Stdin.Fd())) {
			return statusError{code: 1, msg: "requested load from stdin, but stdin is empty"}
		}
		resp, err := a.c.Do(a.ctx, http.MethodPost, "/images/load", url.Values{"quiet": {strconv.FormatBool(quiet)}}, client.Bulk(in), "application/x-tar")
		if err != nil {
			return apiError(err, 1)
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m struct{ Stream, Error string }
			if err := dec.Decode(&m); err != nil {
				break
			}
			if m.Error != "" {
				return statusError{code: 1, msg: m.Error}
			}
			fmt.Print(m.Stream)
		}
		return nil
	})
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}

func saveCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{Use: "save [OPTIONS] IMAGE [IMAGE...]", Short: "Save one or more images to a tar archive (streamed to STDOUT by default)", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		if output == "" && term.IsTerminal(int(os.Stdout.Fd())) {
			return statusError{code: 1, msg: "cowardly refusing to save to a terminal. Use the -o flag or redirect"}
		}
		resp, err := a.c.Do(a.ctx, http.MethodGet, "/images/get", url.Values{"names": args}, nil, "")
		if err != nil {
			return apiError(err, 1)
		}
		defer resp.Body.Close()
		return writeOutput(output, resp.Body)
	})
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

func tagCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", Args: cobra.ExactArgs(2)}
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{"repo": {args[1]}} // the daemon parses it (and answers a bad one)
		if err := a.c.JSON(a.ctx, http.MethodPost, "/images/"+args[0]+"/tag", q, nil, nil); err != nil {
			return apiError(err, 1)
		}
		return nil
	})
	return cmd
}

func rmiCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{Use: "rmi [OPTIONS] IMAGE [IMAGE...]", Short: "Remove one or more images", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		failed := false
		for _, ref := range args {
			var resp []image.DeleteResponse
			if err := a.c.JSON(a.ctx, http.MethodDelete, "/images/"+ref, url.Values{"force": {strconv.FormatBool(force)}}, nil, &resp); err != nil {
				fmt.Fprintln(os.Stderr, apiError(err, 1).Error())
				failed = true
				continue
			}
			for _, r := range resp {
				if r.Untagged != "" {
					fmt.Println("Untagged:", r.Untagged)
				}
				if r.Deleted != "" {
					fmt.Println("Deleted:", r.Deleted)
				}
			}
		}
		if failed {
			return statusError{code: 1}
		}
		return nil
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force removal of the image")
	return cmd
}

// bootstrapCmd makes a base image from the host's static busybox, since
// there may be no registry to pull one from.
func bootstrapCmd(a *app) *cobra.Command {
	var name, bin string
	cmd := &cobra.Command{Use: "bootstrap busybox", Short: "Make a busybox base image from the host's static busybox", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		if args[0] != "busybox" {
			return statusError{code: 1, msg: fmt.Sprintf("cannot bootstrap %q: only busybox is supported", args[0])}
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(busyboxTar(pw, bin)) }()
		id, err := a.importTar(pr, name, []string{`CMD ["sh"]`}, "bootstrapped from "+bin, "")
		if err != nil {
			return err
		}
		fmt.Println(id)
		return nil
	})
	cmd.Flags().StringVar(&name, "name", "busybox:latest", "name of the image")
	cmd.Flags().StringVar(&bin, "busybox", "/bin/busybox", "static busybox binary to use (apt-get install busybox-static)")
	return cmd
}

// busyboxTar writes a root file system: busybox, a link per applet, the
// usual directories, and minimal passwd and group files.
func busyboxTar(w io.Writer, bin string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("%v (apt-get install busybox-static)", err)
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %v: is it busybox?", bin, err)
	}
	tw := tar.NewWriter(w)
	now := time.Now()
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "root", "tmp", "var", "home", "usr"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content)), ModTime: now}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, content); err != nil {
			return err
		}
	}
	return tw.Close()
}
