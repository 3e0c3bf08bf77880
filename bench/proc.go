package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

func allPids() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out[pid] = true
		}
	}
	return out
}

// procField reads one "Key: value" field (in kB for memory) of a /proc
// file; 0 when it is gone (a process that exited).
func procField(path, key string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return n
		}
	}
	return 0
}

func rssKB(pid int) float64 { return procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS") }

// pssKB is the proportional set size: shared pages (a binary mapped by
// every monitor or shim) are divided among the processes that map them.
func pssKB(pid int) float64 { return procField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss") }
func ppid(pid int) int      { return int(procField(fmt.Sprintf("/proc/%d/status", pid), "PPid")) }
func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// summary is the median and the 10th and 90th percentiles of samples.
func summary(samples []float64) (med, p10, p90 float64) {
	c := append([]float64(nil), samples...)
	sort.Float64s(c)
	at := func(q float64) float64 { return c[int(q*float64(len(c)-1)+0.5)] }
	return at(0.5), at(0.1), at(0.9)
}
