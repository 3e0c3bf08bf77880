package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func diffCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "diff CONTAINER", Short: "Inspect changes to files or directories on a container's filesystem", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		var changes []struct {
			Path string
			Kind int
		}
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/"+args[0]+"/changes", nil, nil, &changes); err != nil {
			return apiError(err, 1)
		}
		for _, c := range changes {
			kind := "C"
			switch c.Kind {
			case 1:
				kind = "A"
			case 2:
				kind = "D"
			}
			fmt.Println(kind, c.Path)
		}
		return nil
	})
	return cmd
}

func exportCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{Use: "export [OPTIONS] CONTAINER", Short: "Export a container's filesystem as a tar archive", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		if output == "" && term.IsTerminal(int(os.Stdout.Fd())) {
			return statusError{code: 1, msg: "cowardly refusing to save to a terminal. Use the -o flag or redirect"}
		}
		resp, err := a.c.Do(a.ctx, http.MethodGet, "/containers/"+args[0]+"/export", nil, nil, "")
		if err != nil {
			return apiError(err, 1)
		}
		defer resp.Body.Close()
		return writeOutput(output, resp.Body)
	})
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

// writeOutput copies r to stdout, or to file by way of a temporary file
// renamed at the end (a failure leaves no half archive under the name).
func writeOutput(file string, r io.Reader) error {
	if file == "" {
		_, err := io.Copy(os.Stdout, r)
		return err
	}
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return statusError{code: 1, msg: err.Error()}
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return statusError{code: 1, msg: err.Error()}
	}
	return nil
}

func commitCmd(a *app) *cobra.Command {
	var author, message string
	var changes []string
	pause := true
	cmd := &cobra.Command{Use: "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", Short: "Create a new image from a container's changes", Args: cobra.RangeArgs(1, 2)}
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{"container": {args[0]}, "author": {author}, "comment": {message}, "changes": changes,
			"pause": {strconv.FormatBool(pause)}}
		if len(args) == 2 {
			ref := splitRef(args[1])
			q.Set("repo", ref.name())
			q.Set("tag", ref.tag)
		}
		var resp struct{ ID string }
		if err := a.c.JSON(a.ctx, http.MethodPost, "/commit", q, map[string]any{}, &resp); err != nil {
			return apiError(err, 1)
		}
		fmt.Println(resp.ID)
		return nil
	})
	fl := cmd.Flags()
	fl.StringVarP(&author, "author", "a", "", `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fl.StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	fl.StringVarP(&message, "message", "m", "", "commit message")
	fl.BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}
