package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/moby/moby/api/types/checkpoint"
	"github.com/spf13/cobra"
)

// checkpointCmd is `tent checkpoint`: create, ls, rm, as docker's
// (experimental there; a VM container's whole state here, docs/vm.md).
func checkpointCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "checkpoint", Short: "Manage checkpoints"}
	var leaveRunning bool
	create := &cobra.Command{Use: "create [OPTIONS] CONTAINER CHECKPOINT", Short: "Create a checkpoint from a running container", Args: cobra.ExactArgs(2)}
	create.RunE = a.runE(func(args []string) error {
		req := checkpoint.CreateRequest{CheckpointID: args[1], Exit: !leaveRunning}
		if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+args[0]+"/checkpoints", nil, req, nil); err != nil {
			return apiError(err, 1)
		}
		fmt.Println(args[1])
		return nil
	})
	create.Flags().BoolVar(&leaveRunning, "leave-running", false, "leave the container running after checkpoint")
	ls := &cobra.Command{Use: "ls CONTAINER", Aliases: []string{"list"}, Short: "List checkpoints for a container", Args: cobra.ExactArgs(1)}
	ls.RunE = a.runE(func(args []string) error {
		var list []checkpoint.Summary
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/"+args[0]+"/checkpoints", nil, nil, &list); err != nil {
			return apiError(err, 1)
		}
		rows := make([]any, len(list))
		for i := range list {
			rows[i] = list[i]
		}
		return printRows(os.Stdout, "table {{.Name}}", map[string]string{"Name": "CHECKPOINT NAME"}, rows)
	})
	rm := &cobra.Command{Use: "rm CONTAINER CHECKPOINT", Aliases: []string{"remove"}, Short: "Remove a checkpoint", Args: cobra.ExactArgs(2)}
	rm.RunE = a.runE(func(args []string) error {
		if err := a.c.JSON(a.ctx, http.MethodDelete, "/containers/"+args[0]+"/checkpoints/"+url.PathEscape(args[1]), nil, nil, nil); err != nil {
			return apiError(err, 1)
		}
		return nil
	})
	cmd.AddCommand(create, ls, rm)
	return cmd
}
