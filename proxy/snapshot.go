// Package proxy turns proxy.hcl into a running proxy: it compiles a decoded
// config into an immutable Snapshot, and the Runtime applies snapshots to the
// sockets it owns (listeners, built-in servers, the admin endpoint), swapping
// them atomically on every reload.
package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"

	"switchyard/listeners/httpproxy"
	"switchyard/listeners/l7"
	"switchyard/listeners/routing"
	"switchyard/listeners/tcpproxy"
	"switchyard/proxy/config"
	"switchyard/upstream"
)

// Snapshot is one compiled generation of the configuration. Nothing mutates
// it after compile returns; the Runtime swaps whole snapshots.
type Snapshot struct {
	Config *config.Config
	Hash   string // "sha256:<hex>" of the file bytes it was compiled from

	Pools      []*upstream.Pool // file order
	poolByName map[string]*upstream.Pool
	transports map[string]*upstreamTransport

	HTTP map[string]*httpproxy.Options // by listener name
	TCP  map[string]*tcpproxy.Options  // by listener name
}

// Pool returns the named pool, or nil.
func (s *Snapshot) Pool(name string) *upstream.Pool { return s.poolByName[name] }

// upstreamTransport is an upstream's pooled HTTP transport. It is reused by
// the next snapshot while the connect timeout is unchanged, so idle upstream
// connections survive reloads.
type upstreamTransport struct {
	connectTimeoutKey string
	transport         *http.Transport
}

// maxIdlePerBackend bounds the idle keep-alive connections kept per backend.
const maxIdlePerBackend = 512

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// compile builds a Snapshot. It creates backend state in the registry for new
// (upstream, address) pairs but starts nothing and binds nothing; a caller
// that abandons the snapshot calls registry.Retain with the live pools.
func compile(cfg *config.Config, src []byte, reg *upstream.Registry, prev *Snapshot) (*Snapshot, error) {
	snap := &Snapshot{
		Config:     cfg,
		Hash:       hashBytes(src),
		poolByName: make(map[string]*upstream.Pool, len(cfg.Upstreams)),
		transports: make(map[string]*upstreamTransport, len(cfg.Upstreams)),
		HTTP:       make(map[string]*httpproxy.Options),
		TCP:        make(map[string]*tcpproxy.Options),
	}
	for _, u := range cfg.Upstreams {
		pool, err := reg.NewPool(poolConfig(u))
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
		}
		snap.Pools = append(snap.Pools, pool)
		snap.poolByName[u.Name] = pool

		key := u.ConnectTimeout.String()
		if prev != nil {
			if t := prev.transports[u.Name]; t != nil && t.connectTimeoutKey == key {
				snap.transports[u.Name] = t
				continue
			}
		}
		snap.transports[u.Name] = &upstreamTransport{
			connectTimeoutKey: key,
			transport:         httpproxy.NewTransport(u.ConnectTimeout, maxIdlePerBackend),
		}
	}

	for _, l := range cfg.Listeners {
		switch l.Protocol {
		case "http":
			routes := make([]*routing.Route[*httpproxy.Target], 0, len(l.Routes))
			for _, r := range l.Routes {
				routes = append(routes, compileRoute(r, snap))
			}
			snap.HTTP[l.Name] = &httpproxy.Options{
				Listener:  l.Name,
				Table:     routing.NewTable(routes),
				AccessLog: cfg.Log.Access,
				Forward: l7.ForwardPolicy{
					TrustedProxies:   l.TrustedProxies,
					AllowUnderscores: l.UnderscoresInHeaders,
				},
			}
		case "tcp":
			snap.TCP[l.Name] = &tcpproxy.Options{
				Listener:    l.Name,
				Pool:        snap.poolByName[l.Upstream],
				IdleTimeout: l.IdleTimeout,
				AccessLog:   cfg.Log.Access,
			}
		}
	}
	return snap, nil
}

func compileRoute(r *config.Route, snap *Snapshot) *routing.Route[*httpproxy.Target] {
	target := &httpproxy.Target{
		Route:           r.Name,
		Timeout:         r.Timeout,
		Retries:         r.Retries,
		RequestHeaders:  headerList(r.RequestHeaders),
		ResponseHeaders: headerList(r.ResponseHeaders),
	}
	if r.Respond != nil {
		target.Respond = &httpproxy.StaticResponse{
			Status:  r.Respond.Status,
			Body:    []byte(r.Respond.Body),
			Headers: headerList(r.Respond.Headers),
		}
	} else {
		target.Pool = snap.poolByName[r.Upstream]
		target.Transport = snap.transports[r.Upstream].transport
		if r.StripPrefix {
			target.StripPrefix = r.PathPrefix
		}
	}
	return &routing.Route[*httpproxy.Target]{
		Name: r.Name,
		Matcher: routing.Matcher{
			Host:       r.Host,
			Path:       r.Path,
			PathPrefix: r.PathPrefix,
			Methods:    r.Methods,
			Headers:    headerList(r.Headers),
		},
		Target: target,
	}
}

// headerList turns a map into a canonical, name-sorted list so that header
// application order is deterministic.
func headerList(m map[string]string) []routing.Header {
	if len(m) == 0 {
		return nil
	}
	out := make([]routing.Header, 0, len(m))
	for k, v := range m {
		out = append(out, routing.Header{Name: textproto.CanonicalMIMEHeaderKey(k), Value: v})
	}
	slices.SortFunc(out, func(a, b routing.Header) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

func poolConfig(u *config.Upstream) upstream.PoolConfig {
	pc := upstream.PoolConfig{
		Name:           u.Name,
		Strategy:       u.Strategy,
		HashOn:         u.HashOn,
		ConnectTimeout: u.ConnectTimeout,
	}
	for _, b := range u.Backends {
		pc.Backends = append(pc.Backends, upstream.BackendConfig{Address: b.Address, Weight: b.Weight})
	}
	if hc := u.HealthCheck; hc != nil {
		pc.HealthCheck = &upstream.HealthCheckConfig{
			Interval:           hc.Interval,
			Timeout:            hc.Timeout,
			Path:               hc.Path,
			HealthyThreshold:   hc.HealthyThreshold,
			UnhealthyThreshold: hc.UnhealthyThreshold,
		}
	}
	if cb := u.CircuitBreaker; cb != nil {
		pc.Breaker = upstream.BreakerConfig{
			ConsecutiveFailures: cb.ConsecutiveFailures,
			FailureRatio:        cb.FailureRatio,
			MinRequests:         cb.MinRequests,
			OpenTimeout:         cb.OpenTimeout,
			HalfOpenRequests:    cb.HalfOpenRequests,
		}
	}
	return pc
}
