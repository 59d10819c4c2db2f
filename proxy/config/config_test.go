package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// mustParse parses src and fails the test on any diagnostic.
func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, diags := Parse("test.hcl", []byte(src))
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", strings.Join(FormatDiagnostics(diags), "\n"))
	}
	return cfg
}

// mustParseFixture parses a valid fixture and fails on any diagnostic.
func mustParseFixture(t *testing.T, name string) *Config {
	t.Helper()
	cfg, lines := parseFixture(t, name)
	if len(lines) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", strings.Join(lines, "\n"))
	}
	return cfg
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func checkDeep(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestSpecExampleValues(t *testing.T) {
	t.Setenv("DEPLOY_ENV", "staging")
	cfg := mustParseFixture(t, "testdata/config/valid/spec_example.hcl")

	check(t, "ShutdownTimeout", cfg.ShutdownTimeout, 15*time.Second)
	check(t, "Admin.Listen", cfg.Admin.Listen, "127.0.0.1:9090")
	check(t, "Log", cfg.Log, Log{Level: "info", Format: "text", Access: true})
	checkDeep(t, "listeners", names(cfg.Listeners, func(l *Listener) string { return l.Name }), []string{"web", "echo"})
	checkDeep(t, "upstreams", names(cfg.Upstreams, func(u *Upstream) string { return u.Name }), []string{"api", "chat", "echo"})
	checkDeep(t, "builtins", names(cfg.Builtins, func(b *Builtin) string { return b.Name }), []string{"hello-1", "hello-2", "chat", "echo-1", "echo-2"})

	web := cfg.Listeners[0]
	check(t, "web.Protocol", web.Protocol, "http")
	check(t, "web.MaxConnections", web.MaxConnections, 10000)
	check(t, "web.IdleTimeout", web.IdleTimeout, 60*time.Second)
	checkDeep(t, "web routes", names(web.Routes, func(r *Route) string { return r.Name }), []string{"chat", "api", "fallback"})
	check(t, "web.ListenRange line", web.ListenRange.Start.Line, 15)

	api := web.Routes[1]
	checkDeep(t, "api route", *api, Route{
		Name:            "api",
		DeclRange:       api.DeclRange,
		Host:            "api.localhost",
		PathPrefix:      "/api/",
		Methods:         []string{"GET", "POST"},
		Headers:         map[string]string{"X-Canary": "1"},
		Upstream:        "api",
		StripPrefix:     true,
		Timeout:         30 * time.Second,
		Retries:         1,
		RequestHeaders:  map[string]string{"X-Env": "staging"},
		ResponseHeaders: map[string]string{"X-Served-By": "switchyard"},
		UpstreamRange:   api.UpstreamRange,
	})
	check(t, "api.DeclRange line", api.DeclRange.Start.Line, 24)
	check(t, "api.UpstreamRange line", api.UpstreamRange.Start.Line, 29)

	fallback := web.Routes[2]
	check(t, "fallback.Upstream", fallback.Upstream, "")
	checkDeep(t, "fallback.Respond", fallback.Respond, &Respond{Status: 404, Body: "no such page\n"})

	echo := cfg.Listeners[1]
	check(t, "echo.Protocol", echo.Protocol, "tcp")
	check(t, "echo.Upstream", echo.Upstream, "echo")
	check(t, "echo routes", len(echo.Routes), 0)

	up := cfg.Upstreams[0]
	check(t, "api.Strategy", up.Strategy, "round_robin")
	check(t, "api.HashOn", up.HashOn, "")
	check(t, "api.ConnectTimeout", up.ConnectTimeout, 2*time.Second)
	checkDeep(t, "api backends", names(up.Backends, func(b *Backend) string { return b.Address }), []string{"127.0.0.1:9001", "127.0.0.1:9002"})
	check(t, "backend 1 weight", up.Backends[0].Weight, 3)
	check(t, "backend 2 weight", up.Backends[1].Weight, 1)
	checkDeep(t, "api.HealthCheck", up.HealthCheck, &HealthCheck{Interval: 2 * time.Second, Timeout: time.Second, Path: "/healthz", HealthyThreshold: 2, UnhealthyThreshold: 2})
	checkDeep(t, "api.CircuitBreaker", up.CircuitBreaker, &CircuitBreaker{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, OpenTimeout: 10 * time.Second, HalfOpenRequests: 1})
	check(t, "echo.Strategy", cfg.Upstreams[2].Strategy, "least_conn")

	hello := cfg.Builtins[0]
	checkDeep(t, "hello-1", *hello, Builtin{
		Name: "hello-1", DeclRange: hello.DeclRange, Handler: "http",
		Listen: "127.0.0.1:9001", ListenRange: hello.ListenRange,
		Status: 200, Healthy: true, MaxRooms: DefaultMaxRooms, MaxClientsPerRoom: DefaultMaxClientsPerRoom,
	})
	chat := cfg.Builtins[2]
	check(t, "chat.Handler", chat.Handler, "chat")
	check(t, "chat.MaxRooms", chat.MaxRooms, 100)
	check(t, "chat.MaxClientsPerRoom", chat.MaxClientsPerRoom, 50)
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, `
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  route "static" {
    path = "/robots.txt"
    respond {}
  }
  route "api" {
    upstream = "api"
  }
}
upstream "api" {
  backend "127.0.0.1:9001" {}
}
builtin "hello" {
  handler = "http"
  listen  = "127.0.0.1:9001"
}
builtin "chat" {
  handler = "chat"
  listen  = "127.0.0.1:9002"
}
`)
	check(t, "Path", cfg.Path, "test.hcl")
	check(t, "ShutdownTimeout", cfg.ShutdownTimeout, DefaultShutdownTimeout)
	if cfg.Admin != nil {
		t.Errorf("Admin = %+v, want nil without an admin block", cfg.Admin)
	}
	check(t, "Log", cfg.Log, Log{Level: DefaultLogLevel, Format: DefaultLogFormat, Access: false})

	l := cfg.Listeners[0]
	check(t, "MaxConnections", l.MaxConnections, DefaultMaxConnections)
	check(t, "IdleTimeout", l.IdleTimeout, DefaultIdleTimeout)
	r := l.Routes[1]
	check(t, "Route.Timeout", r.Timeout, DefaultRouteTimeout)
	check(t, "Route.Retries", r.Retries, DefaultRetries)
	check(t, "Route.StripPrefix", r.StripPrefix, false)
	if r.Methods != nil || r.Headers != nil || r.RequestHeaders != nil || r.ResponseHeaders != nil || r.Respond != nil {
		t.Errorf("unset route fields should be nil: %+v", r)
	}
	checkDeep(t, "Respond", l.Routes[0].Respond, &Respond{Status: DefaultRespondStatus})

	u := cfg.Upstreams[0]
	check(t, "Strategy", u.Strategy, DefaultStrategy)
	check(t, "ConnectTimeout", u.ConnectTimeout, DefaultConnectTimeout)
	check(t, "Weight", u.Backends[0].Weight, 1)
	if u.HealthCheck != nil {
		t.Errorf("HealthCheck = %+v, want nil without a health_check block", u.HealthCheck)
	}
	checkDeep(t, "CircuitBreaker", u.CircuitBreaker, &CircuitBreaker{
		ConsecutiveFailures: DefaultBreakerFailures,
		FailureRatio:        DefaultBreakerRatio,
		MinRequests:         DefaultBreakerMinReqs,
		OpenTimeout:         DefaultBreakerOpen,
		HalfOpenRequests:    DefaultBreakerHalfOpen,
	})

	for _, b := range cfg.Builtins {
		check(t, b.Name+".Status", b.Status, DefaultBuiltinStatus)
		check(t, b.Name+".Healthy", b.Healthy, true)
		check(t, b.Name+".Latency", b.Latency, time.Duration(0))
		check(t, b.Name+".ErrorRate", b.ErrorRate, 0.0)
		check(t, b.Name+".MaxRooms", b.MaxRooms, DefaultMaxRooms)
		check(t, b.Name+".MaxClientsPerRoom", b.MaxClientsPerRoom, DefaultMaxClientsPerRoom)
	}
}

func TestEmptyHealthCheckGetsDefaults(t *testing.T) {
	cfg := mustParse(t, `
admin {
  listen = "127.0.0.1:0"
}
upstream "api" {
  backend "127.0.0.1:9001" {}
  health_check {}
  circuit_breaker {
    failure_ratio = 0.9
  }
}
`)
	u := cfg.Upstreams[0]
	checkDeep(t, "HealthCheck", u.HealthCheck, &HealthCheck{
		Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThresh,
	})
	check(t, "FailureRatio", u.CircuitBreaker.FailureRatio, 0.9)
	check(t, "ConsecutiveFailures", u.CircuitBreaker.ConsecutiveFailures, DefaultBreakerFailures)
}

func TestAllAttributes(t *testing.T) {
	cfg := mustParseFixture(t, "testdata/config/valid/all_attributes.hcl")
	check(t, "ShutdownTimeout", cfg.ShutdownTimeout, 30*time.Second)
	check(t, "Log", cfg.Log, Log{Level: "debug", Format: "json", Access: true})

	web := cfg.Listeners[0]
	check(t, "MaxConnections", web.MaxConnections, 500)
	check(t, "IdleTimeout", web.IdleTimeout, 90*time.Second)
	exact, api, teapot := web.Routes[0], web.Routes[1], web.Routes[2]
	check(t, "exact.Host (lower-cased)", exact.Host, "www.example.com")
	check(t, "exact.Path", exact.Path, "/exact")
	checkDeep(t, "exact.Methods", exact.Methods, []string{"GET", "HEAD"})
	check(t, "api.Host", api.Host, "*.example.com")
	checkDeep(t, "api.Headers (canonical names)", api.Headers, map[string]string{"X-Canary": "1", "X-Tenant": "blue"})
	check(t, "api.Retries", api.Retries, 0)
	check(t, "api.Timeout", api.Timeout, 5*time.Second)
	check(t, "api.StripPrefix", api.StripPrefix, true)
	checkDeep(t, "teapot.Respond", teapot.Respond, &Respond{Status: 418, Body: "short and stout\n", Headers: map[string]string{"Content-Type": "text/plain"}})
	checkDeep(t, "teapot.ResponseHeaders", teapot.ResponseHeaders, map[string]string{"X-Route": "teapot"})

	tcp := cfg.Listeners[1]
	check(t, "tcp.Upstream", tcp.Upstream, "sticky")
	check(t, "tcp.UpstreamRange line", tcp.UpstreamRange.Start.Line, 53)

	up := cfg.Upstreams[0]
	check(t, "Strategy", up.Strategy, "least_latency")
	check(t, "ConnectTimeout", up.ConnectTimeout, 750*time.Millisecond)
	checkDeep(t, "backends", names(up.Backends, func(b *Backend) string { return b.Address }), []string{"127.0.0.1:9001", "localhost:9002", "api-3.internal:9003"})
	checkDeep(t, "weights", names(up.Backends, func(b *Backend) string { return string(rune('0' + b.Weight)) }), []string{"5", "1", "1"})
	checkDeep(t, "HealthCheck", up.HealthCheck, &HealthCheck{Interval: 3 * time.Second, Timeout: 500 * time.Millisecond, Path: "/ready", HealthyThreshold: 3, UnhealthyThreshold: 4})
	checkDeep(t, "CircuitBreaker", up.CircuitBreaker, &CircuitBreaker{ConsecutiveFailures: 7, FailureRatio: 0.25, MinRequests: 40, OpenTimeout: 30 * time.Second, HalfOpenRequests: 3})
	check(t, "sticky.HashOn", cfg.Upstreams[1].HashOn, "client_ip")
	check(t, "by-user.HashOn", cfg.Upstreams[2].HashOn, "header:X-User")

	slow := cfg.Builtins[0]
	check(t, "Status", slow.Status, 503)
	check(t, "Body", slow.Body, "busy\n")
	check(t, "Latency", slow.Latency, 250*time.Millisecond)
	check(t, "ErrorRate", slow.ErrorRate, 0.1)
	check(t, "Healthy", slow.Healthy, false)
	rooms := cfg.Builtins[1]
	check(t, "MaxRooms", rooms.MaxRooms, 5)
	check(t, "MaxClientsPerRoom", rooms.MaxClientsPerRoom, 2)
}

func TestLocalsAndEnv(t *testing.T) {
	const fixture = "testdata/config/valid/locals_and_functions.hcl"
	t.Run("unset", func(t *testing.T) {
		t.Setenv("SWITCHYARD_TEST_ENV", "")
		os.Unsetenv("SWITCHYARD_TEST_ENV") // t.Setenv restores it afterwards
		cfg := mustParseFixture(t, fixture)
		web := cfg.Listeners[0]
		check(t, "Listen", web.Listen, "127.0.0.1:8080")
		check(t, "MaxConnections", web.MaxConnections, 100)
		check(t, "IdleTimeout (null = default)", web.IdleTimeout, DefaultIdleTimeout)
		checkDeep(t, "RequestHeaders", web.Routes[0].RequestHeaders, map[string]string{"X-Env": "env/dev", "X-Tag": "DEV-8000"})
		checkDeep(t, "ResponseHeaders (unset env is empty)", web.Routes[0].ResponseHeaders, map[string]string{"X-Unset": ""})
		check(t, "Weight", cfg.Upstreams[0].Backends[0].Weight, 2)
		check(t, "builtin Listen", cfg.Builtins[0].Listen, "127.0.0.1:9001")
		check(t, "builtin Body", cfg.Builtins[0].Body, "dev")
	})
	t.Run("set", func(t *testing.T) {
		t.Setenv("SWITCHYARD_TEST_ENV", "prod")
		cfg := mustParseFixture(t, fixture)
		web := cfg.Listeners[0]
		check(t, "MaxConnections", web.MaxConnections, 10000)
		check(t, "IdleTimeout", web.IdleTimeout, 60*time.Second)
		checkDeep(t, "RequestHeaders", web.Routes[0].RequestHeaders, map[string]string{"X-Env": "env/prod", "X-Tag": "PROD-8000"})
		check(t, "Weight", cfg.Upstreams[0].Backends[0].Weight, 1)
		check(t, "builtin Body", cfg.Builtins[0].Body, "prod")
	})
}

func TestEnvInAddresses(t *testing.T) {
	t.Setenv("SWITCHYARD_TEST_PORT", "18080")
	cfg := mustParse(t, `
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:${env("SWITCHYARD_TEST_PORT")}"
}
`)
	check(t, "Listen", cfg.Listeners[0].Listen, "127.0.0.1:18080")

	// A bad value from the environment is reported where env() is used.
	t.Setenv("SWITCHYARD_TEST_PORT", "http")
	_, diags := Parse("test.hcl", []byte(`
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:${env("SWITCHYARD_TEST_PORT")}"
}
`))
	checkDeep(t, "diagnostics", FormatDiagnostics(diags), []string{
		`test.hcl:4,14: Invalid listen address: "127.0.0.1:http": port "http" must be a number from 0 to 65535`,
	})
}

func TestUnreachableRouteIsAWarning(t *testing.T) {
	cfg, diags := Parse("test.hcl", []byte(`
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:8080"
  route "everything" {
    path_prefix = "/"
    respond {}
  }
  route "never" {
    path = "/never"
    respond {}
  }
}
`))
	if cfg == nil {
		t.Fatal("a warning must not reject the file")
	}
	checkDeep(t, "diagnostics", FormatDiagnostics(diags), []string{
		`test.hcl:9,3: warning: Unreachable route: route "never" can never match: route "everything" at test.hcl:5,3 comes first and matches every request`,
	})
}

func TestFormatDiagnostic(t *testing.T) {
	at := &hcl.Range{Filename: "proxy.hcl", Start: hcl.Pos{Line: 12, Column: 3, Byte: 200}, End: hcl.Pos{Line: 12, Column: 9, Byte: 206}}
	tests := []struct {
		name string
		diag hcl.Diagnostic
		want string
	}{
		{"error", hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad", Detail: "very bad", Subject: at}, "proxy.hcl:12,3: Bad: very bad"},
		{"no detail", hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad", Subject: at}, "proxy.hcl:12,3: Bad"},
		{"warning", hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Odd", Detail: "hmm", Subject: at}, "proxy.hcl:12,3: warning: Odd: hmm"},
		{"file only", hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read", Detail: "gone", Subject: &hcl.Range{Filename: "proxy.hcl"}}, "proxy.hcl: Cannot read: gone"},
		{"no subject", hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad", Detail: "very bad"}, "Bad: very bad"},
		{"multi-line detail", hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Bad", Detail: "first line\n  second line\n", Subject: at}, "proxy.hcl:12,3: Bad: first line second line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, "FormatDiagnostic", FormatDiagnostic(&tt.diag), tt.want)
		})
	}
	all := hcl.Diagnostics{&tests[0].diag, &tests[2].diag}
	checkDeep(t, "FormatDiagnostics", FormatDiagnostics(all), []string{tests[0].want, tests[2].want})
	if got := FormatDiagnostics(nil); len(got) != 0 {
		t.Errorf("FormatDiagnostics(nil) = %q, want empty", got)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "absent.hcl")
		cfg, src, diags := LoadFile(path)
		if cfg != nil || src != nil {
			t.Errorf("got cfg=%v src=%q, want both nil", cfg, src)
		}
		lines := FormatDiagnostics(diags)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], path+": Cannot read configuration file: ") || !diags.HasErrors() {
			t.Errorf("diagnostics = %q", lines)
		}
	})

	t.Run("invalid file keeps bytes", func(t *testing.T) {
		path := filepath.Join(dir, "bad.hcl")
		body := "listener \"web\" {\n  protocol = \"udp\"\n  listen = \"127.0.0.1:0\"\n}\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, src, diags := LoadFile(path)
		if cfg != nil {
			t.Error("got a Config for an invalid file")
		}
		check(t, "src", string(src), body)
		checkDeep(t, "diagnostics", FormatDiagnostics(diags), []string{path + `:2,14: Invalid protocol: protocol "udp" is not one of http, tcp`})
	})

	t.Run("syntax error keeps bytes", func(t *testing.T) {
		path := filepath.Join(dir, "syntax.hcl")
		if err := os.WriteFile(path, []byte("listener {"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, src, diags := LoadFile(path)
		if cfg != nil || string(src) != "listener {" || !diags.HasErrors() {
			t.Errorf("got cfg=%v src=%q diags=%q", cfg, src, FormatDiagnostics(diags))
		}
	})

	t.Run("valid file", func(t *testing.T) {
		path := filepath.Join(dir, "proxy.hcl")
		body := "admin {\n  listen = \"127.0.0.1:0\"\n}\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, src, diags := LoadFile(path)
		if len(diags) > 0 || cfg == nil {
			t.Fatalf("got cfg=%v diags=%q", cfg, FormatDiagnostics(diags))
		}
		check(t, "Path", cfg.Path, path)
		check(t, "src", string(src), body)
		check(t, "Admin.Listen", cfg.Admin.Listen, "127.0.0.1:0")
		check(t, "ListenRange", cfg.Admin.ListenRange.String(), path+":2,12-25")
	})
}

// TestDiagnosticOrderIsStable guards against map iteration leaking into the
// output: HCL bodies keep attributes in maps.
func TestDiagnosticOrderIsStable(t *testing.T) {
	const name = "testdata/config/invalid/many_problems.hcl"
	_, first := parseFixture(t, name)
	for range 20 {
		_, again := parseFixture(t, name)
		if !slices.Equal(first, again) {
			t.Fatalf("output changed between runs:\n%s\n---\n%s", strings.Join(first, "\n"), strings.Join(again, "\n"))
		}
	}
}

// TestEveryErrorHasASubject makes sure FormatDiagnostics can always print a
// position for problems inside a file.
func TestEveryErrorHasASubject(t *testing.T) {
	for _, name := range fixtures(t, "invalid") {
		src, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		_, diags := Parse(name, src)
		for _, d := range diags {
			if d.Subject == nil || d.Subject.Filename != name || d.Subject.Start.Line == 0 {
				t.Errorf("%s: diagnostic without a position: %s", name, FormatDiagnostic(d))
			}
		}
	}
}

func BenchmarkParseSpecExample(b *testing.B) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "testdata", "config", "valid", "spec_example.hcl"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, diags := Parse("spec_example.hcl", src); diags.HasErrors() {
			b.Fatal(FormatDiagnostics(diags))
		}
	}
}
