package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"switchyard/proxy/config"
	"switchyard/proxy/metrics"
	"switchyard/upstream"
)

// Options configure a Runtime.
type Options struct {
	ConfigPath string
	Logger     hclog.Logger
	// LogLevelFromFlag is true when -log-level was given: the file's level
	// is then ignored, at start and on reload.
	LogLevelFromFlag bool
	Version          string
}

// ReloadResult is the outcome of one load attempt, as /status shows it.
type ReloadResult struct {
	At          time.Time
	Trigger     string
	OK          bool
	Changed     bool // false for a no-op (bytes identical to the loaded file)
	Generation  uint64
	Error       string
	Diagnostics []string
}

// Runtime owns the sockets, the backend state registry and the current
// Snapshot, and applies new snapshots on reload.
type Runtime struct {
	opts      Options
	log       hclog.Logger
	registry  *upstream.Registry
	metrics   *metrics.Metrics
	startedAt time.Time

	snap atomic.Pointer[Snapshot] // nil only before the first successful load

	// reloadMu serialises loads and shutdown and guards healthCancel,
	// healthDone and stopped.
	reloadMu sync.Mutex
	// endpointsMu guards the endpoints map. Only holders of reloadMu write
	// it; /status reads it without waiting for a reload or a drain.
	endpointsMu  sync.RWMutex
	endpoints    map[string]*endpoint
	healthCancel context.CancelFunc
	healthDone   chan struct{}
	stopped      bool

	stateMu    sync.RWMutex // guards generation, loadedAt, lastReload
	generation uint64
	loadedAt   time.Time
	lastReload *ReloadResult

	bg sync.WaitGroup // serve goroutines, health checkers, drains
}

// New creates a Runtime; nothing runs until Start.
func New(opts Options) *Runtime {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	r := &Runtime{
		opts:      opts,
		log:       opts.Logger,
		registry:  upstream.NewRegistry(opts.Logger.Named("upstream")),
		metrics:   metrics.New(),
		startedAt: time.Now(),
		endpoints: make(map[string]*endpoint),
	}
	r.metrics.Registry.MustRegister(&stateCollector{r: r})
	return r
}

// Metrics returns the runtime's metrics (and its Prometheus registry).
func (r *Runtime) Metrics() *metrics.Metrics { return r.metrics }

// Snapshot returns the current generation (nil before Start succeeded).
func (r *Runtime) Snapshot() *Snapshot { return r.snap.Load() }

// LoadError reports a config that could not be loaded; Diagnostics are
// FILE:LINE,COL lines.
type LoadError struct {
	Diagnostics []string
	Diags       hcl.Diagnostics
}

func (e *LoadError) Error() string {
	if len(e.Diagnostics) == 0 {
		return "invalid configuration"
	}
	return strings.Join(e.Diagnostics, "; ")
}

// Start loads the config file and starts everything it declares. On error
// nothing is left running.
func (r *Runtime) Start() error {
	res := r.Reload("start")
	if !res.OK {
		return &LoadError{Diagnostics: res.Diagnostics}
	}
	return nil
}

// Reload reads the config file and applies it if it changed. It never runs
// concurrently with another reload; on any failure the running config stays.
func (r *Runtime) Reload(trigger string) ReloadResult {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if r.stopped {
		return ReloadResult{At: time.Now(), Trigger: trigger, Error: "runtime is shutting down"}
	}
	began := time.Now()
	res := r.reloadLocked(trigger)
	r.log.Debug("reload finished", "trigger", trigger, "took", time.Since(began).String(), "ok", res.OK, "changed", res.Changed)
	if res.OK && !res.Changed {
		r.log.Debug("config unchanged; nothing to do", "trigger", trigger)
		r.stateMu.Lock()
		if r.lastReload != nil && !r.lastReload.OK {
			// The file is back to what is running: the earlier error is
			// no longer what /status should show.
			r.lastReload = &res
			r.log.Info("config file matches the running config again", "generation", res.Generation)
		}
		r.stateMu.Unlock()
		return res
	}
	r.stateMu.Lock()
	r.lastReload = &res
	if res.OK {
		r.generation = res.Generation
		r.loadedAt = res.At
	}
	r.stateMu.Unlock()
	r.metrics.Reload(res.OK)
	if res.OK {
		r.log.Info("config loaded", "path", r.opts.ConfigPath, "generation", res.Generation, "trigger", trigger)
	} else {
		for _, d := range res.Diagnostics {
			r.log.Error("config rejected; keeping the running config", "trigger", trigger, "diagnostic", d)
		}
		if len(res.Diagnostics) == 0 {
			r.log.Error("config rejected; keeping the running config", "trigger", trigger, "error", res.Error)
		}
	}
	return res
}

func (r *Runtime) reloadLocked(trigger string) ReloadResult {
	now := time.Now()
	res := ReloadResult{At: now, Trigger: trigger}
	fail := func(diags hcl.Diagnostics) ReloadResult {
		res.Diagnostics = config.FormatDiagnostics(diags)
		res.Error = strings.Join(res.Diagnostics, "\n")
		return res
	}

	cfg, src, diags := config.LoadFile(r.opts.ConfigPath)
	current := r.snap.Load()
	if src != nil && current != nil && hashBytes(src) == current.Hash {
		res.OK = true
		res.Generation = r.currentGeneration()
		return res
	}
	if diags.HasErrors() {
		return fail(diags)
	}

	snap, err := compile(cfg, src, r.registry, current)
	if err != nil {
		r.retainCurrent()
		return fail(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "cannot compile configuration", Detail: err.Error()}})
	}

	plan, err := r.prepare(snap)
	if err != nil {
		r.retainCurrent()
		var be *bindError
		if errors.As(err, &be) {
			return fail(hcl.Diagnostics{be.diagnostic()})
		}
		return fail(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "cannot apply configuration", Detail: err.Error()}})
	}
	r.commit(snap, plan)

	res.OK = true
	res.Changed = true
	res.Generation = r.currentGeneration() + 1
	return res
}

func (r *Runtime) currentGeneration() uint64 {
	r.stateMu.RLock()
	defer r.stateMu.RUnlock()
	return r.generation
}

// retainCurrent drops backend state a rejected snapshot created.
func (r *Runtime) retainCurrent() {
	if cur := r.snap.Load(); cur != nil {
		r.registry.Retain(cur.Pools)
	} else {
		r.registry.Retain(nil)
	}
}

// plan is what a reload will change, prepared without touching anything
// that serves.
type plan struct {
	keep     map[string]endpointSpec // key → new spec, endpoint exists
	fresh    []*endpoint             // bound, not yet serving
	takeover []*endpoint             // address held by an endpoint being removed: bound at commit
	remove   []*endpoint
}

// prepare binds every new address. Addresses that an endpoint being removed
// still holds (the kind of server on the address changes) cannot be bound
// before that endpoint lets go; they are bound at commit instead.
func (r *Runtime) prepare(snap *Snapshot) (*plan, error) {
	p := &plan{keep: make(map[string]endpointSpec)}
	wanted := make(map[string]bool)
	for _, spec := range specsOf(snap.Config) {
		key := spec.key()
		wanted[key] = true
		if _, ok := r.endpoints[key]; ok {
			p.keep[key] = spec
			continue
		}
		if r.heldByOldEndpoint(spec) {
			p.takeover = append(p.takeover, &endpoint{spec: spec})
			continue
		}
		ln, err := bind(spec)
		if err != nil {
			for _, e := range p.fresh {
				_ = e.ln.Close()
			}
			return nil, err
		}
		p.fresh = append(p.fresh, &endpoint{spec: spec, ln: ln})
	}
	for key, e := range r.endpoints {
		if !wanted[key] {
			p.remove = append(p.remove, e)
		}
	}
	return p, nil
}

func (r *Runtime) heldByOldEndpoint(spec endpointSpec) bool {
	if isAnyPort(spec.listen) {
		return false
	}
	addr := normalizeAddr(spec.listen)
	for _, e := range r.endpoints {
		if normalizeAddr(e.spec.listen) == addr {
			return true
		}
	}
	return false
}

// commit swaps the snapshot in and reconciles the running endpoints. Kept
// listeners switch to the new routes atomically; removed ones drain in the
// background within shutdown_timeout.
func (r *Runtime) commit(snap *Snapshot, p *plan) {
	prev := r.snap.Load()
	r.snap.Store(snap)

	for key, spec := range p.keep {
		r.endpoints[key].update(spec, snap)
	}
	// Stop accepting on removed endpoints first so takeovers can bind, but
	// let their open connections drain in the background.
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), snap.Config.ShutdownTimeout)
	var drains sync.WaitGroup
	r.endpointsMu.Lock()
	for _, e := range p.remove {
		delete(r.endpoints, e.spec.key())
	}
	r.endpointsMu.Unlock()
	for _, e := range p.remove {
		drains.Add(1)
		r.bg.Add(1)
		go func(e *endpoint) {
			defer r.bg.Done()
			defer drains.Done()
			if err := e.stop(drainCtx); err != nil {
				r.log.Warn("removed endpoint did not stop cleanly", "name", e.spec.name, "error", err)
			}
			r.log.Info("stopped", "kind", string(e.spec.kind), "name", e.spec.name, "listen", e.spec.listen)
		}(e)
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		drains.Wait()
		cancelDrain()
	}()

	for _, e := range p.fresh {
		r.start(e, snap)
		r.setEndpoint(e)
	}
	for _, e := range p.takeover {
		ln, err := bindWithin(e.spec, 2*time.Second)
		if err != nil {
			r.log.Error("address handed over by a removed endpoint could not be bound", "name", e.spec.name, "error", err)
			continue
		}
		e.ln = ln
		r.start(e, snap)
		r.setEndpoint(e)
	}

	r.restartHealthChecks(snap)
	r.registry.Retain(snap.Pools)
	r.metrics.RetainRoutes(routeKeys(snap.Config))
	if prev != nil {
		for name, t := range prev.transports {
			if snap.transports[name] != t {
				t.transport.CloseIdleConnections()
			}
		}
	}
	r.applyLogLevel(snap.Config)
}

func (r *Runtime) setEndpoint(e *endpoint) {
	r.endpointsMu.Lock()
	r.endpoints[e.spec.key()] = e
	r.endpointsMu.Unlock()
}

// routeKeys lists the metric identity of every route in cfg.
func routeKeys(cfg *config.Config) []metrics.RouteKey {
	var keys []metrics.RouteKey
	for _, l := range cfg.Listeners {
		for _, rt := range l.Routes {
			keys = append(keys, metrics.RouteKey{Listener: l.Name, Route: rt.Name, Upstream: rt.Upstream})
		}
	}
	return keys
}

// bindWithin retries a bind while a removed endpoint releases the address.
func bindWithin(spec endpointSpec, budget time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(budget)
	for {
		ln, err := bind(spec)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restartHealthChecks runs the new snapshot's checkers and stops the old
// ones. Health state lives on the backends, so nothing is lost.
func (r *Runtime) restartHealthChecks(snap *Snapshot) {
	if r.healthCancel != nil {
		r.healthCancel()
		<-r.healthDone
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.healthCancel, r.healthDone = cancel, done
	var wg sync.WaitGroup
	for _, pool := range snap.Pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool.RunHealthChecks(ctx)
		}()
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		wg.Wait()
		close(done)
	}()
}

func (r *Runtime) applyLogLevel(cfg *config.Config) {
	if r.opts.LogLevelFromFlag {
		return
	}
	if lvl := hclog.LevelFromString(cfg.Log.Level); lvl != hclog.NoLevel {
		r.log.SetLevel(lvl)
	}
}

// Shutdown stops accepting everywhere, drains listeners, then built-in
// servers, then the admin endpoint, all within the config's
// shutdown_timeout (or ctx, whichever ends first), and waits for every
// goroutine the runtime started.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.reloadMu.Lock()
	if r.stopped {
		r.reloadMu.Unlock()
		return nil
	}
	r.stopped = true
	timeout := config.DefaultShutdownTimeout
	if snap := r.snap.Load(); snap != nil {
		timeout = snap.Config.ShutdownTimeout
	}
	if r.healthCancel != nil {
		r.healthCancel()
	}
	r.reloadMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var errs []error
	for _, phase := range []func(endpointKind) bool{
		func(k endpointKind) bool { return k == kindHTTPListener || k == kindTCPListener },
		func(k endpointKind) bool { return strings.HasPrefix(string(k), string(kindBuiltin)) },
		func(k endpointKind) bool { return k == kindAdmin },
	} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		r.endpointsMu.Lock()
		var stopping []*endpoint
		for key, e := range r.endpoints {
			if phase(e.spec.kind) {
				delete(r.endpoints, key)
				stopping = append(stopping, e)
			}
		}
		r.endpointsMu.Unlock()
		for _, e := range stopping {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.stop(ctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s %q: %w", e.spec.kind, e.spec.name, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	r.bg.Wait()
	if snap := r.snap.Load(); snap != nil {
		for _, t := range snap.transports {
			t.transport.CloseIdleConnections()
		}
	}
	return errors.Join(errs...)
}

// fileHash is the hash of what is on disk now ("" if unreadable).
func (r *Runtime) fileHash() string {
	b, err := os.ReadFile(r.opts.ConfigPath)
	if err != nil {
		return ""
	}
	return hashBytes(b)
}
