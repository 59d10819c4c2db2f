package proxy

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Status is the JSON document of GET /status (SPEC §5).
type Status struct {
	Version       string           `json:"version"`
	UptimeSeconds float64          `json:"uptime_seconds"`
	Config        ConfigStatus     `json:"config"`
	Admin         *AdminStatus     `json:"admin,omitempty"` // nil when the config has no admin block
	Listeners     []ListenerStatus `json:"listeners"`
	Upstreams     []UpstreamStatus `json:"upstreams"`
	Builtins      []BuiltinStatus  `json:"builtins"`
}

// ConfigStatus describes the loaded configuration.
type ConfigStatus struct {
	Path       string            `json:"path"`
	Generation uint64            `json:"generation"`
	Hash       string            `json:"hash"`
	FileHash   string            `json:"file_hash"`
	LoadedAt   string            `json:"loaded_at"`
	LastReload *LastReloadStatus `json:"last_reload"`
}

// LastReloadStatus is the outcome of the last reload that was not a no-op.
type LastReloadStatus struct {
	At          string   `json:"at"`
	OK          bool     `json:"ok"`
	Error       string   `json:"error"` // "" when ok; always present so clients need not test for it
	Trigger     string   `json:"trigger"`
	Generation  uint64   `json:"generation"`
	Diagnostics []string `json:"diagnostics,omitempty"`
}

// AdminStatus is the admin endpoint itself.
type AdminStatus struct {
	Listen  string `json:"listen"`
	Address string `json:"address"` // bound address (differs for port 0)
}

// ListenerStatus is one listener.
type ListenerStatus struct {
	Name              string        `json:"name"`
	Protocol          string        `json:"protocol"`
	Listen            string        `json:"listen"`
	Address           string        `json:"address"` // bound address (differs for port 0)
	ActiveConnections int64         `json:"active_connections"`
	TotalConnections  uint64        `json:"total_connections"`
	Upstream          string        `json:"upstream,omitempty"` // tcp
	Routes            []RouteStatus `json:"routes,omitempty"`   // http
}

// RouteStatus is one route of an http listener.
type RouteStatus struct {
	Name       string   `json:"name"`
	Host       string   `json:"host,omitempty"`
	Path       string   `json:"path,omitempty"`
	PathPrefix string   `json:"path_prefix,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	Upstream   string   `json:"upstream,omitempty"`
	Respond    bool     `json:"respond,omitempty"`
}

// UpstreamStatus is one pool.
type UpstreamStatus struct {
	Name     string          `json:"name"`
	Strategy string          `json:"strategy"`
	Backends []BackendStatus `json:"backends"`
}

// BackendStatus is one backend's live state.
type BackendStatus struct {
	Address           string  `json:"address"`
	Weight            int     `json:"weight"`
	Healthy           bool    `json:"healthy"`
	Breaker           string  `json:"breaker"`
	ActiveConnections int64   `json:"active_connections"`
	Requests          uint64  `json:"requests"`
	Failures          uint64  `json:"failures"`
	LatencyMS         float64 `json:"latency_ms"`
}

// BuiltinStatus is one built-in server.
type BuiltinStatus struct {
	Name    string `json:"name"`
	Handler string `json:"handler"`
	Listen  string `json:"listen"`
	Address string `json:"address"`
	// Handler-specific live figures.
	Requests          *uint64 `json:"requests,omitempty"`
	ActiveConnections *int64  `json:"active_connections,omitempty"`
	ChatClients       *int    `json:"chat_clients,omitempty"`
	ChatRooms         *int    `json:"chat_rooms,omitempty"`
	ChatMessages      *uint64 `json:"chat_messages,omitempty"`
}

// Status reads the live runtime.
func (r *Runtime) Status() *Status {
	st := &Status{
		Version:       r.opts.Version,
		UptimeSeconds: time.Since(r.startedAt).Seconds(),
		Listeners:     []ListenerStatus{},
		Upstreams:     []UpstreamStatus{},
		Builtins:      []BuiltinStatus{},
	}
	st.Config.Path = r.opts.ConfigPath
	st.Config.FileHash = r.fileHash()
	r.stateMu.RLock()
	st.Config.Generation = r.generation
	if !r.loadedAt.IsZero() {
		st.Config.LoadedAt = r.loadedAt.UTC().Format(time.RFC3339)
	}
	if lr := r.lastReload; lr != nil {
		st.Config.LastReload = &LastReloadStatus{
			At: lr.At.UTC().Format(time.RFC3339), OK: lr.OK, Error: lr.Error,
			Trigger: lr.Trigger, Generation: lr.Generation, Diagnostics: lr.Diagnostics,
		}
	}
	r.stateMu.RUnlock()

	snap := r.snap.Load()
	if snap == nil {
		return st
	}
	st.Config.Hash = snap.Hash

	endpoints := r.endpointsByName()
	if a := snap.Config.Admin; a != nil {
		st.Admin = &AdminStatus{Listen: a.Listen}
		if e := endpoints[string(kindAdmin)+"|admin"]; e != nil {
			st.Admin.Address = e.addr()
		}
	}
	for _, l := range snap.Config.Listeners {
		ls := ListenerStatus{Name: l.Name, Protocol: l.Protocol, Listen: l.Listen, Upstream: l.Upstream}
		if e := endpoints[string(kindOf(l.Protocol))+"|"+l.Name]; e != nil {
			ls.Address = e.addr()
			switch {
			case e.httpServer != nil:
				ls.ActiveConnections = e.httpServer.ActiveConnections()
				ls.TotalConnections = e.httpServer.TotalConnections()
			case e.tcpServer != nil:
				ls.ActiveConnections = e.tcpServer.ActiveConnections()
				ls.TotalConnections = e.tcpServer.TotalConnections()
			}
		}
		for _, rt := range l.Routes {
			ls.Routes = append(ls.Routes, RouteStatus{
				Name: rt.Name, Host: rt.Host, Path: rt.Path, PathPrefix: rt.PathPrefix,
				Methods: rt.Methods, Upstream: rt.Upstream, Respond: rt.Respond != nil,
			})
		}
		st.Listeners = append(st.Listeners, ls)
	}
	for _, pool := range snap.Pools {
		us := UpstreamStatus{Name: pool.Name(), Strategy: pool.Strategy(), Backends: []BackendStatus{}}
		for _, m := range pool.Members() {
			b := m.Backend
			us.Backends = append(us.Backends, BackendStatus{
				Address: b.Address(), Weight: m.Weight, Healthy: b.Healthy(), Breaker: b.BreakerState(),
				ActiveConnections: b.ActiveConnections(), Requests: b.Requests(), Failures: b.Failures(),
				LatencyMS: float64(b.LatencyEstimate().Microseconds()) / 1000,
			})
		}
		st.Upstreams = append(st.Upstreams, us)
	}
	for _, b := range snap.Config.Builtins {
		bs := BuiltinStatus{Name: b.Name, Handler: b.Handler, Listen: b.Listen}
		if e := endpoints[string(kindBuiltin)+b.Handler+"|"+b.Name]; e != nil {
			bs.Address = e.addr()
			switch {
			case e.responder != nil:
				n := e.responder.Requests()
				bs.Requests = &n
			case e.echo != nil:
				n := e.echo.ActiveConnections()
				bs.ActiveConnections = &n
			case e.chat != nil:
				c, rooms, msgs := e.chat.Clients(), e.chat.Rooms(), e.chat.MessagesTotal()
				bs.ChatClients, bs.ChatRooms, bs.ChatMessages = &c, &rooms, &msgs
			}
		}
		st.Builtins = append(st.Builtins, bs)
	}
	return st
}

func kindOf(protocol string) endpointKind {
	if protocol == "tcp" {
		return kindTCPListener
	}
	return kindHTTPListener
}

// endpointsByName indexes running endpoints by kind and name.
func (r *Runtime) endpointsByName() map[string]*endpoint {
	r.endpointsMu.RLock()
	defer r.endpointsMu.RUnlock()
	out := make(map[string]*endpoint, len(r.endpoints))
	for _, e := range r.endpoints {
		out[string(e.spec.kind)+"|"+e.spec.name] = e
	}
	return out
}

// stateCollector exports runtime state at scrape time, so gauges never lag
// and the request path never updates them.
type stateCollector struct{ r *Runtime }

var (
	descConnectionsActive = prometheus.NewDesc("switchyard_connections_active", "Open client connections per listener.", []string{"listener"}, nil)
	descConnectionsTotal  = prometheus.NewDesc("switchyard_connections_total", "Client connections accepted per listener.", []string{"listener"}, nil)
	descBackendHealthy    = prometheus.NewDesc("switchyard_backend_healthy", "1 when the backend passes health checks.", []string{"upstream", "backend"}, nil)
	descBreakerOpen       = prometheus.NewDesc("switchyard_backend_breaker_open", "1 when the backend's circuit breaker is open.", []string{"upstream", "backend"}, nil)
	descBackendActive     = prometheus.NewDesc("switchyard_backend_active_connections", "Requests or connections in flight per backend.", []string{"upstream", "backend"}, nil)
	descBackendRequests   = prometheus.NewDesc("switchyard_backend_requests_total", "Requests or connections sent per backend.", []string{"upstream", "backend"}, nil)
	descBackendFailures   = prometheus.NewDesc("switchyard_backend_failures_total", "Failed requests or connections per backend.", []string{"upstream", "backend"}, nil)
	descChatClients       = prometheus.NewDesc("switchyard_chat_clients", "Connected chat clients per chat builtin.", []string{"builtin"}, nil)
	descChatMessages      = prometheus.NewDesc("switchyard_chat_messages_total", "Chat messages broadcast per chat builtin.", []string{"builtin"}, nil)
	descGeneration        = prometheus.NewDesc("switchyard_config_generation", "Successful config loads so far.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnectionsActive, descConnectionsTotal, descBackendHealthy, descBreakerOpen,
		descBackendActive, descBackendRequests, descBackendFailures, descChatClients, descChatMessages, descGeneration} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status()
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.CounterValue, float64(st.Config.Generation))
	for _, l := range st.Listeners {
		ch <- prometheus.MustNewConstMetric(descConnectionsActive, prometheus.GaugeValue, float64(l.ActiveConnections), l.Name)
		ch <- prometheus.MustNewConstMetric(descConnectionsTotal, prometheus.CounterValue, float64(l.TotalConnections), l.Name)
	}
	for _, u := range st.Upstreams {
		for _, b := range u.Backends {
			ch <- prometheus.MustNewConstMetric(descBackendHealthy, prometheus.GaugeValue, boolFloat(b.Healthy), u.Name, b.Address)
			ch <- prometheus.MustNewConstMetric(descBreakerOpen, prometheus.GaugeValue, boolFloat(b.Breaker == "open"), u.Name, b.Address)
			ch <- prometheus.MustNewConstMetric(descBackendActive, prometheus.GaugeValue, float64(b.ActiveConnections), u.Name, b.Address)
			ch <- prometheus.MustNewConstMetric(descBackendRequests, prometheus.CounterValue, float64(b.Requests), u.Name, b.Address)
			ch <- prometheus.MustNewConstMetric(descBackendFailures, prometheus.CounterValue, float64(b.Failures), u.Name, b.Address)
		}
	}
	names := make([]string, 0)
	byName := map[string]BuiltinStatus{}
	for _, b := range st.Builtins {
		if b.ChatClients != nil {
			names = append(names, b.Name)
			byName[b.Name] = b
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b := byName[n]
		ch <- prometheus.MustNewConstMetric(descChatClients, prometheus.GaugeValue, float64(*b.ChatClients), n)
		ch <- prometheus.MustNewConstMetric(descChatMessages, prometheus.CounterValue, float64(*b.ChatMessages), n)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
