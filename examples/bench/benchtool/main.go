// Command benchtool is the Go half of examples/bench/run.sh: the TCP
// backends of the L4 benchmarks, the load generators that wrk does not cover
// (L4 ping-pong, L4 bulk, idle keep-alive connections), a /proc reader for a
// proxy's process tree, and the report that turns a results directory into
// the markdown table.
//
// Usage:
//
//	benchtool serve    -echo 127.0.0.1:18011,127.0.0.1:18012 -sink 127.0.0.1:18013
//	benchtool pingpong -addr 127.0.0.1:18101 -conns 64 -size 64 -d 5s
//	benchtool bulk     -addr 127.0.0.1:18102 -mib 1024
//	benchtool idle     -addr 127.0.0.1:18100 -conns 10000 -pid 1234
//	benchtool procstat -pid 1234
//	benchtool report   -dir examples/bench/results/20260101-120000
//
// Every client refuses non-loopback addresses: this is a benchmark for one
// machine, never a load generator for someone else's.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: benchtool serve|pingpong|bulk|idle|procstat|report [flags]")
		return 2
	}
	// Each entry point returns the exit code: 0 ok, 1 failed, 2 bad usage.
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "pingpong":
		return runPingPong(ctx, args[1:], stdout, stderr)
	case "bulk":
		return runBulk(ctx, args[1:], stdout, stderr)
	case "idle":
		return runIdle(ctx, args[1:], stdout, stderr)
	case "procstat":
		return runProcStat(ctx, args[1:], stdout, stderr)
	case "report":
		return runReport(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "benchtool: unknown command %q\n", args[0])
		return 2
	}
}
