package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// WrkResult is what the report needs from one wrk run's text output.
type WrkResult struct {
	Requests     int64
	Seconds      float64
	ReqPerSec    float64
	LatencyUS    map[int]float64 // percentile (50, 75, 90, 99) -> µs; only with --latency
	SocketErrors int64           // connect + read + write + timeout
	Non2xx       int64           // wrk's "Non-2xx or 3xx responses"
}

// Errors is every failed request wrk saw.
func (w WrkResult) Errors() int64 { return w.SocketErrors + w.Non2xx }

// parseWrk reads wrk 4.x output, e.g.
//
//	  Latency Distribution
//	     50%  120.00us
//	  250000 requests in 5.00s, 30.00MB read
//	  Socket errors: connect 0, read 2, write 0, timeout 0
//	  Non-2xx or 3xx responses: 12
//	Requests/sec:  50000.00
func parseWrk(out string) (WrkResult, error) {
	w := WrkResult{LatencyUS: map[int]float64{}}
	var sawRequests, sawRate bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return w, fmt.Errorf("wrk request count %q: %w", f[0], err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return w, err
			}
			w.Requests, w.Seconds, sawRequests = n, d, true
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return w, fmt.Errorf("wrk rate %q: %w", f[1], err)
			}
			w.ReqPerSec, sawRate = v, true
		case strings.HasPrefix(line, "Socket errors:"):
			// "Socket errors: connect 0, read 2, write 0, timeout 0"
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return w, fmt.Errorf("wrk socket errors %q: %w", line, err)
				}
				w.SocketErrors += v
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			v, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return w, fmt.Errorf("wrk non-2xx %q: %w", line, err)
			}
			w.Non2xx = v
		case len(f) == 2 && strings.HasSuffix(f[0], "%"):
			p, err := strconv.Atoi(strings.TrimSuffix(f[0], "%"))
			if err != nil {
				continue // not a distribution line
			}
			v, err := parseWrkLatency(f[1])
			if err != nil {
				return w, err
			}
			w.LatencyUS[p] = v
		}
	}
	if !sawRequests || !sawRate {
		return w, fmt.Errorf("not wrk output (no request count or rate): %.200q", out)
	}
	return w, nil
}

// parseWrkLatency converts wrk's "612.00us", "1.21ms", "2.00s" to µs.
func parseWrkLatency(s string) (float64, error) {
	for _, u := range []struct {
		suffix string
		us     float64
	}{{"us", 1}, {"ms", 1e3}, {"m", 60e6}, {"s", 1e6}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk latency %q: %w", s, err)
			}
			return v * u.us, nil
		}
	}
	return 0, fmt.Errorf("wrk latency %q: unknown unit", s)
}

// parseWrkDuration converts wrk's "5.00s", "1.00m", "900.00ms" to seconds.
func parseWrkDuration(s string) (float64, error) {
	us, err := parseWrkLatency(s)
	if err != nil {
		return 0, fmt.Errorf("wrk duration: %w", err)
	}
	return us / 1e6, nil
}
