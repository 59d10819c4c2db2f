package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ProcUsage is the CPU time and memory of a process tree.
type ProcUsage struct {
	PIDs     []int
	CPUTicks uint64 // utime+stime of every process, in clock ticks (USER_HZ)
	RSSKiB   uint64 // VmRSS summed over the processes
}

func runProcStat(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("procstat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "root of the process tree")
	cpu := fs.Int("cpu", 0, "core whose busy ticks are printed too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u, err := treeUsage("/proc", *pid)
	if err != nil {
		fmt.Fprintf(stderr, "procstat: %v\n", err)
		return 1
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		fmt.Fprintf(stderr, "procstat: %v\n", err)
		return 1
	}
	busy, err := coreBusyTicks(stat, *cpu)
	if err != nil {
		fmt.Fprintf(stderr, "procstat: %v\n", err)
		return 1
	}
	// One line the shell can `read`: tree ticks, tree RSS in KiB, process
	// count, busy ticks of the core (everything that ran on it).
	fmt.Fprintf(stdout, "%d %d %d %d\n", u.CPUTicks, u.RSSKiB, len(u.PIDs), busy)
	return 0
}

// coreBusyTicks reads the "cpuN" line of /proc/stat: the ticks the core
// spent on anything but idle and iowait (user, nice, system, irq, softirq,
// steal; guest time is already inside user).
func coreBusyTicks(stat []byte, cpu int) (uint64, error) {
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for line := range strings.SplitSeq(string(stat), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 9 {
			return 0, fmt.Errorf("malformed /proc/stat line %q", line)
		}
		var busy uint64
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat %s field %d: %w", f[0], i, err)
			}
			busy += v
		}
		return busy, nil
	}
	return 0, fmt.Errorf("/proc/stat has no cpu%d line", cpu)
}

// treeUsage sums CPU ticks and RSS over root and all its descendants, as
// found under procDir (normally /proc). A process that exits while it is
// being read is skipped: its time is lost either way.
func treeUsage(procDir string, root int) (ProcUsage, error) {
	pids, err := processTree(procDir, root)
	if err != nil {
		return ProcUsage{}, err
	}
	u := ProcUsage{PIDs: pids}
	for _, pid := range pids {
		stat, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		fields, err := statFields(stat)
		if err != nil {
			return ProcUsage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		// After the command name: field 3 is state, 14 utime, 15 stime.
		for _, i := range []int{14, 15} {
			v, err := strconv.ParseUint(fields[i-3], 10, 64)
			if err != nil {
				return ProcUsage{}, fmt.Errorf("pid %d stat field %d: %w", pid, i, err)
			}
			u.CPUTicks += v
		}
		status, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		rss, err := vmRSS(status)
		if err != nil {
			return ProcUsage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.RSSKiB += rss
	}
	return u, nil
}

// processTree returns root followed by its descendants, found through the
// parent pid in every /proc/PID/stat.
func processTree(procDir string, root int) ([]int, error) {
	if root <= 0 {
		return nil, fmt.Errorf("pid %d: not a process id", root)
	}
	if _, err := os.Stat(filepath.Join(procDir, strconv.Itoa(root))); err != nil {
		return nil, fmt.Errorf("pid %d: %w", root, err)
	}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", procDir, err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		fields, err := statFields(stat)
		if err != nil {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		kids := children[tree[i]]
		slices.Sort(kids)
		tree = append(tree, kids...)
	}
	return tree, nil
}

// statFields splits /proc/PID/stat after the parenthesised command name
// (which may itself hold spaces and parentheses), so fields[0] is field 3
// (state) of proc(5).
func statFields(stat []byte) ([]string, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return nil, errors.New("malformed stat: no command name")
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return nil, fmt.Errorf("malformed stat: %d fields after the name", len(fields))
	}
	return fields, nil
}

// vmRSS reads the VmRSS line of /proc/PID/status, in KiB. A zombie or
// kernel thread has none: that is 0.
func vmRSS(status []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed VmRSS line %q", line)
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, nil
}
