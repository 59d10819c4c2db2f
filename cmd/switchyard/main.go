// Command switchyard runs the switchyard proxy: `switchyard [run] [-config
// FILE]`, `switchyard validate [-config FILE]`, `switchyard version`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"golang.org/x/term"

	"switchyard/proxy"
	"switchyard/proxy/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "validate" || args[0] == "version") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "switchyard %s\n", version)
		return 0
	case "validate":
		return validate(args, stdout, stderr)
	default:
		return serve(args, stderr)
	}
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "proxy.hcl", "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	_, src, diags := config.LoadFile(*path)
	if diags.HasErrors() {
		printDiagnostics(stderr, *path, src, diags)
		return 1
	}
	// Warnings (e.g. a route that can never match) do not fail validation.
	for _, line := range config.FormatDiagnostics(diags) {
		fmt.Fprintln(stderr, line)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// printDiagnostics prints one FILE:LINE,COL line per problem; on a terminal
// it adds HCL's source snippets below them.
func printDiagnostics(w io.Writer, path string, src []byte, diags hcl.Diagnostics) {
	for _, line := range config.FormatDiagnostics(diags) {
		fmt.Fprintln(w, line)
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && src != nil {
		width, _, err := term.GetSize(int(f.Fd()))
		if err != nil || width <= 0 {
			width = 100
		}
		files := map[string]*hcl.File{path: {Bytes: src}}
		fmt.Fprintln(w)
		_ = hcl.NewDiagnosticTextWriter(w, files, uint(width), true).WriteDiagnostics(diags)
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "proxy.hcl", "config file")
	level := fs.String("log-level", "", "trace|debug|info|warn|error (overrides the file)")
	format := fs.String("log-format", "", "text|json (overrides the file)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *level != "" && hclog.LevelFromString(*level) == hclog.NoLevel {
		fmt.Fprintf(stderr, "-log-level %q is not one of trace, debug, info, warn, error\n", *level)
		return 2
	}
	if *format != "" && *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "-log-format %q is not one of text, json\n", *format)
		return 2
	}

	// The file decides level and format unless flags override; read it once
	// up front so the very first log lines already follow it.
	cfg, src, diags := config.LoadFile(*path)
	if diags.HasErrors() {
		printDiagnostics(stderr, *path, src, diags)
		return 1
	}
	logLevel, logFormat := cfg.Log.Level, cfg.Log.Format
	if *level != "" {
		logLevel = *level
	}
	if *format != "" {
		logFormat = *format
	}
	logOut := proxy.NewLogWriter(stderr)
	defer logOut.Close()
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "switchyard",
		Level:      hclog.LevelFromString(logLevel),
		Output:     logOut,
		JSONFormat: logFormat == "json",
	})

	rt := proxy.New(proxy.Options{ConfigPath: *path, Logger: log, LogLevelFromFlag: *level != "", Version: version})
	if err := rt.Start(); err != nil {
		var le *proxy.LoadError
		if errors.As(err, &le) {
			for _, d := range le.Diagnostics {
				fmt.Fprintln(stderr, d)
			}
		} else {
			fmt.Fprintln(stderr, err)
		}
		_ = rt.Shutdown(context.Background())
		return 1
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchDone := make(chan error, 1)
	go func() { watchDone <- rt.Watch(ctx, 0) }()

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	for sig := range signals {
		if sig == syscall.SIGHUP {
			rt.Reload("sighup")
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	cancel()
	if err := <-watchDone; err != nil {
		log.Warn("config watcher stopped", "error", err)
	}
	start := time.Now()
	if err := rt.Shutdown(context.Background()); err != nil {
		log.Error("shutdown", "error", err)
	}
	log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond).String())
	return 0
}
