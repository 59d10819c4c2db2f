package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The raw results directory written by run.sh:
//
//	meta.env                      key=value lines: proxies, rounds, hz, ...
//	raw/rR-PROXY-TEST.out         wrk text or benchtool JSON of one run
//	raw/rR-PROXY-TEST.cpu         before=TICKS / after=TICKS of the proxy tree
//
// A missing .out means the test does not apply (Caddy has no L4 proxy).
const (
	testHTTPKeepAlive = "http-c64"
	testHTTPClose     = "http-close"
	testHTTPLatency   = "http-c1"
	testPingPong      = "l4-pingpong"
	testBulk          = "l4-bulk"
	testIdle          = "idle"
)

func runReport(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "results directory written by run.sh")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	table, problems, err := buildReport(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return 1
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "report: %s\n", p)
	}
	fmt.Fprint(stdout, table)
	return 0
}

// displayName is the column title of a proxy.
func displayName(proxy string) string {
	switch proxy {
	case "haproxy":
		return "HAProxy"
	case "caddy":
		return "Caddy"
	case "switchyard-std":
		return "switchyard (std engine)"
	default:
		return proxy
	}
}

// roundResults reads one (round, proxy) pair's raw results.
type roundResults struct {
	dir   string
	round int
	proxy string
	hz    float64
}

func (r roundResults) path(test, ext string) string {
	return filepath.Join(r.dir, "raw", fmt.Sprintf("r%d-%s-%s.%s", r.round, r.proxy, test, ext))
}

// errNotApplicable marks a test that was not run for this proxy.
var errNotApplicable = errors.New("not applicable")

// ran says whether this proxy had its turn in this round: every turn starts
// with the idle test, so a turn the time budget cut off has no idle output.
func (r roundResults) ran() bool {
	_, err := os.Stat(r.path(testIdle, "out"))
	return err == nil
}

func (r roundResults) read(test string) ([]byte, error) {
	b, err := os.ReadFile(r.path(test, "out"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotApplicable
	}
	return b, err
}

func (r roundResults) wrk(test string) (WrkResult, error) {
	b, err := r.read(test)
	if err != nil {
		return WrkResult{}, err
	}
	return parseWrk(string(b))
}

func (r roundResults) json(test string, v any) error {
	b, err := r.read(test)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", r.path(test, "out"), err)
	}
	return nil
}

// cpuSeconds is the proxy tree's CPU time during test.
func (r roundResults) cpuSeconds(test string) (float64, error) {
	kv, err := readKeyValues(r.path(test, "cpu"))
	if err != nil {
		return 0, err
	}
	before, err1 := strconv.ParseFloat(kv["before"], 64)
	after, err2 := strconv.ParseFloat(kv["after"], 64)
	if err := errors.Join(err1, err2); err != nil || after < before {
		return 0, fmt.Errorf("%s: bad tick counts %q..%q", r.path(test, "cpu"), kv["before"], kv["after"])
	}
	return (after - before) / r.hz, nil
}

// otherOnProxyCore is the share of the proxy's core that went to anything
// but the proxy during test: other processes, and interrupt work the kernel
// did not charge to the proxy. High values mean a noisy measurement.
func otherOnProxyCore(test string) func(roundResults) (float64, error) {
	return func(r roundResults) (float64, error) {
		w, err := r.wrk(test)
		if err != nil {
			return 0, err
		}
		proxy, err := r.cpuSeconds(test)
		if err != nil {
			return 0, err
		}
		kv, err := readKeyValues(r.path(test, "cpu"))
		if err != nil {
			return 0, err
		}
		before, err1 := strconv.ParseFloat(kv["core_before"], 64)
		after, err2 := strconv.ParseFloat(kv["core_after"], 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("%s: no core ticks: %w", r.path(test, "cpu"), err)
		}
		return max(0, 100*((after-before)/r.hz-proxy)/w.Seconds), nil
	}
}

// row is one line of the table: a value per round, aggregated per proxy.
type row struct {
	label string
	value func(r roundResults) (float64, error)
	// sum: add the rounds up (error counts) instead of median and spread.
	sum bool
}

func cpuPerRequest(test string) func(roundResults) (float64, error) {
	return func(r roundResults) (float64, error) {
		w, err := r.wrk(test)
		if err != nil {
			return 0, err
		}
		cpu, err := r.cpuSeconds(test)
		if err != nil {
			return 0, err
		}
		if w.Requests == 0 {
			return 0, errors.New("no request completed")
		}
		return cpu * 1e6 / float64(w.Requests), nil
	}
}

func requestRate(test string) func(roundResults) (float64, error) {
	return func(r roundResults) (float64, error) {
		w, err := r.wrk(test)
		return w.ReqPerSec, err
	}
}

func coreBusy(test string) func(roundResults) (float64, error) {
	return func(r roundResults) (float64, error) {
		w, err := r.wrk(test)
		if err != nil {
			return 0, err
		}
		cpu, err := r.cpuSeconds(test)
		if err != nil {
			return 0, err
		}
		return 100 * cpu / w.Seconds, nil
	}
}

func latency(percentile int) func(roundResults) (float64, error) {
	return func(r roundResults) (float64, error) {
		w, err := r.wrk(testHTTPLatency)
		if err != nil {
			return 0, err
		}
		v, ok := w.LatencyUS[percentile]
		if !ok {
			return 0, fmt.Errorf("wrk output has no p%d (was --latency given?)", percentile)
		}
		return v, nil
	}
}

func httpErrors(r roundResults) (float64, error) {
	var total int64
	for _, test := range []string{testHTTPKeepAlive, testHTTPClose, testHTTPLatency} {
		w, err := r.wrk(test)
		if err != nil {
			return 0, err
		}
		total += w.Errors()
	}
	return float64(total), nil
}

func pingPongCPU(r roundResults) (float64, error) {
	var p PingPongResult
	if err := r.json(testPingPong, &p); err != nil {
		return 0, err
	}
	cpu, err := r.cpuSeconds(testPingPong)
	if err != nil {
		return 0, err
	}
	if p.RoundTrips == 0 {
		return 0, fmt.Errorf("no round trip completed: %s", p.FirstError)
	}
	return cpu * 1e6 / float64(p.RoundTrips), nil
}

func pingPongRate(r roundResults) (float64, error) {
	var p PingPongResult
	if err := r.json(testPingPong, &p); err != nil {
		return 0, err
	}
	if p.Seconds <= 0 {
		return 0, errors.New("ping-pong ran for no time")
	}
	return float64(p.RoundTrips) / p.Seconds, nil
}

func bulkRate(r roundResults) (float64, error) {
	var b BulkResult
	if err := r.json(testBulk, &b); err != nil {
		return 0, err
	}
	if b.Errors > 0 {
		return 0, fmt.Errorf("bulk failed: %s", b.FirstError)
	}
	return b.MiBPerSec, nil
}

func idleRSS(r roundResults) (float64, error) {
	var i IdleResult
	if err := r.json(testIdle, &i); err != nil {
		return 0, err
	}
	if i.Opened == 0 {
		return 0, fmt.Errorf("no idle connection opened: %s", i.FirstError)
	}
	return i.KiBPerConn, nil
}

// otherErrors counts failures of the benchtool clients; a test that does
// not apply counts as none.
func otherErrors(r roundResults) (float64, error) {
	var total int
	var p PingPongResult
	var b BulkResult
	var i IdleResult
	for _, t := range []struct {
		test   string
		v      any
		errors *int
	}{{testPingPong, &p, &p.Errors}, {testBulk, &b, &b.Errors}, {testIdle, &i, &i.Errors}} {
		if err := r.json(t.test, t.v); err != nil {
			if errors.Is(err, errNotApplicable) {
				continue
			}
			return 0, err
		}
		total += *t.errors
	}
	return float64(total), nil
}

func reportRows(idleConns string) []row {
	return []row{
		{label: "HTTP keep-alive, wrk -t1 -c64: proxy CPU per request (µs)", value: cpuPerRequest(testHTTPKeepAlive)},
		{label: "HTTP keep-alive req/s (c64)", value: requestRate(testHTTPKeepAlive)},
		{label: "HTTP keep-alive (c64): proxy core busy (%)", value: coreBusy(testHTTPKeepAlive)},
		{label: "HTTP keep-alive (c64): other work on the proxy core (%)", value: otherOnProxyCore(testHTTPKeepAlive)},
		{label: "HTTP `Connection: close`, c16: proxy CPU per request (µs)", value: cpuPerRequest(testHTTPClose)},
		{label: "HTTP `Connection: close` req/s (c16)", value: requestRate(testHTTPClose)},
		{label: "L4 ping-pong (64 conns, 64 B): proxy CPU per round trip (µs)", value: pingPongCPU},
		{label: "L4 ping-pong round trips/s", value: pingPongRate},
		{label: "L4 bulk, one connection (MiB/s)", value: bulkRate},
		{label: idleConns + " idle keep-alive connections: RSS per connection (KiB)", value: idleRSS},
		{label: "c1 latency p50 (µs)", value: latency(50)},
		{label: "c1 latency p99 (µs)", value: latency(99)},
		{label: "HTTP errors (wrk non-2xx + socket errors, all rounds)", value: httpErrors, sum: true},
		{label: "L4 / idle client errors (all rounds)", value: otherErrors, sum: true},
	}
}

// buildReport renders the markdown table for a results directory; problems
// lists the measurements that failed (their cells say so too).
func buildReport(dir string) (table string, problems []string, err error) {
	meta, err := readKeyValues(filepath.Join(dir, "meta.env"))
	if err != nil {
		return "", nil, err
	}
	proxies := strings.Fields(meta["proxies"])
	rounds, err := strconv.Atoi(meta["rounds"])
	if err != nil || rounds < 1 || len(proxies) == 0 {
		return "", nil, fmt.Errorf("meta.env: need proxies and rounds, have %q and %q", meta["proxies"], meta["rounds"])
	}
	hz, err := strconv.ParseFloat(meta["hz"], 64)
	if err != nil || hz <= 0 {
		return "", nil, fmt.Errorf("meta.env: bad hz %q", meta["hz"])
	}
	idleConns := cmp.Or(meta["idle_conns"], "10000")
	if n, err := strconv.Atoi(idleConns); err == nil {
		idleConns = groupThousands(float64(n))
	}

	var b strings.Builder
	b.WriteString("| |")
	for _, p := range proxies {
		fmt.Fprintf(&b, " %s |", displayName(p))
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(proxies)))
	b.WriteString("\n")
	for _, rw := range reportRows(idleConns) {
		fmt.Fprintf(&b, "| %s |", rw.label)
		for _, p := range proxies {
			var vals []float64
			var failures []string
			turns := 0
			for round := 1; round <= rounds; round++ {
				r := roundResults{dir: dir, round: round, proxy: p, hz: hz}
				if !r.ran() {
					continue
				}
				turns++
				v, err := rw.value(r)
				switch {
				case errors.Is(err, errNotApplicable):
				case err != nil:
					failures = append(failures, fmt.Sprintf("r%d: %v", round, err))
				default:
					vals = append(vals, v)
				}
			}
			cell := formatCell(vals, len(failures), rw.sum)
			if turns == 0 {
				cell = "not run"
			}
			fmt.Fprintf(&b, " %s |", cell)
			for _, f := range failures {
				problems = append(problems, fmt.Sprintf("%s, %s: %s", p, rw.label, f))
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n%s; cells: median (min–max) over %d round(s), error rows: total.\n",
		cmp.Or(meta["description"], "switchyard benchmark"), rounds)
	return b.String(), problems, nil
}

// formatCell renders one proxy's values for a row.
func formatCell(vals []float64, failed int, sum bool) string {
	if len(vals) == 0 {
		if failed > 0 {
			return "failed"
		}
		return "n/a"
	}
	var cell string
	if sum {
		var total float64
		for _, v := range vals {
			total += v
		}
		cell = groupThousands(total) // counts
	} else {
		cell = formatNumber(median(vals))
		if len(vals) > 1 {
			cell += fmt.Sprintf(" (%s–%s)", formatNumber(slices.Min(vals)), formatNumber(slices.Max(vals)))
		}
	}
	if failed > 0 {
		cell += fmt.Sprintf(" [%d round(s) failed]", failed)
	}
	return cell
}

func median(vals []float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// formatNumber keeps about three significant digits, with thousands
// grouped: 41,230 / 512 / 18.3 / 2.41.
func formatNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return groupThousands(v)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a == 0:
		return "0"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func groupThousands(v float64) string {
	digits := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// readKeyValues reads key=value lines; blank lines and # comments are skipped.
func readKeyValues(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: not key=value: %q", path, line)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return kv, nil
}
