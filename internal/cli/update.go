package cli

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

func updateCmd(a *app) *cobra.Command {
	var memory, swap, reservation, cpus, cpusetCpus, cpusetMems, restart string
	var shares, period, quota, pids int64
	var weight uint16
	cmd := &cobra.Command{Use: "update [OPTIONS] CONTAINER [CONTAINER...]", Short: "Update configuration of one or more containers",
		Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		var u container.UpdateConfig
		r := &u.Resources
		bytes := func(flag, v string, dst *int64) error {
			if v == "" {
				return nil
			}
			if flag == "memory-swap" && v == "-1" {
				*dst = -1
				return nil
			}
			n, err := units.RAMInBytes(v)
			if err != nil {
				return statusError{code: 125, msg: fmt.Sprintf("invalid argument %q for \"--%s\" flag: %v", v, flag, err)}
			}
			*dst = n
			return nil
		}
		for _, b := range []struct {
			flag, v string
			dst     *int64
		}{{"memory", memory, &r.Memory}, {"memory-swap", swap, &r.MemorySwap}, {"memory-reservation", reservation, &r.MemoryReservation}} {
			if err := bytes(b.flag, b.v, b.dst); err != nil {
				return err
			}
		}
		if cpus != "" {
			f, err := strconv.ParseFloat(cpus, 64)
			if err != nil || f < 0 {
				return statusError{code: 125, msg: fmt.Sprintf("invalid argument %q for \"--cpus\" flag: invalid number", cpus)}
			}
			r.NanoCPUs = int64(f * 1e9)
		}
		r.CPUShares, r.CPUPeriod, r.CPUQuota, r.BlkioWeight = shares, period, quota, weight
		r.CpusetCpus, r.CpusetMems = cpusetCpus, cpusetMems
		if cmd.Flag("pids-limit").Changed {
			r.PidsLimit = &pids
		}
		if restart != "" {
			name, count, _ := strings.Cut(restart, ":")
			u.RestartPolicy.Name = container.RestartPolicyMode(name)
			if count != "" {
				n, err := strconv.Atoi(count)
				if err != nil {
					return statusError{code: 125, msg: fmt.Sprintf("invalid restart policy %q", restart)}
				}
				u.RestartPolicy.MaximumRetryCount = n
			}
		}
		return forEach(args, func(ref string) error {
			var resp container.UpdateResponse
			if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+ref+"/update", nil, u, &resp); err != nil {
				return err
			}
			for _, w := range resp.Warnings {
				fmt.Fprintln(os.Stderr, "Warning:", w)
			}
			return nil
		})
	})
	fl := cmd.Flags()
	fl.StringVarP(&memory, "memory", "m", "", "Memory limit")
	fl.StringVar(&swap, "memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.StringVar(&reservation, "memory-reservation", "", "Memory soft limit")
	fl.StringVar(&cpus, "cpus", "", "Number of CPUs")
	fl.Int64VarP(&shares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&period, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&quota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&pids, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&weight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	fl.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}
