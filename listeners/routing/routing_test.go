package routing

import (
	"fmt"
	"net/http"
	"testing"
)

func headerFunc(kv ...string) func(string) string {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h.Get
}

func TestMatch(t *testing.T) {
	routes := []*Route[string]{
		{Name: "exact-path", Matcher: Matcher{Path: "/healthz"}, Target: "health"},
		{Name: "api-host", Matcher: Matcher{Host: "API.Example.com", PathPrefix: "/api/"}, Target: "api"},
		{Name: "wildcard", Matcher: Matcher{Host: "*.apps.example.com"}, Target: "apps"},
		{Name: "canary", Matcher: Matcher{PathPrefix: "/shop", Headers: []Header{{Name: "X-Canary", Value: "1"}}}, Target: "shop-canary"},
		{Name: "shop-write", Matcher: Matcher{PathPrefix: "/shop", Methods: []string{"POST", "PUT"}}, Target: "shop-write"},
		{Name: "shop", Matcher: Matcher{PathPrefix: "/shop", Methods: []string{"GET"}}, Target: "shop"},
		{Name: "multi-header", Matcher: Matcher{Path: "/both", Headers: []Header{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}}, Target: "both"},
		{Name: "v6", Matcher: Matcher{Host: "[::1]", Path: "/v6"}, Target: "v6"},
		{Name: "later-healthz", Matcher: Matcher{Path: "/healthz", Methods: []string{"GET"}}, Target: "never"},
	}
	table := NewTable(routes)

	tests := []struct {
		name string
		req  Request
		want string // route name, "" for no match
	}{
		{"exact path", Request{Method: "GET", Path: "/healthz"}, "exact-path"},
		{"exact path is not a prefix", Request{Method: "GET", Path: "/healthz/x"}, ""},
		{"first match in file order wins", Request{Method: "GET", Host: "x", Path: "/healthz"}, "exact-path"},
		{"host exact", Request{Method: "GET", Host: "api.example.com", Path: "/api/users"}, "api-host"},
		{"host ignores case and port", Request{Method: "GET", Host: "API.EXAMPLE.COM:8443", Path: "/api/"}, "api-host"},
		{"host trailing dot", Request{Method: "GET", Host: "api.example.com.", Path: "/api/x"}, "api-host"},
		{"host matches but prefix does not", Request{Method: "GET", Host: "api.example.com", Path: "/apix"}, ""},
		{"prefix matches but host does not", Request{Method: "GET", Host: "www.example.com", Path: "/api/x"}, ""},
		{"wildcard one label", Request{Method: "GET", Host: "foo.apps.example.com", Path: "/"}, "wildcard"},
		{"wildcard with port", Request{Method: "GET", Host: "Foo.apps.example.com:80", Path: "/"}, "wildcard"},
		{"wildcard not the bare domain", Request{Method: "GET", Host: "apps.example.com", Path: "/"}, ""},
		{"wildcard not two labels", Request{Method: "GET", Host: "a.b.apps.example.com", Path: "/"}, ""},
		{"wildcard not an empty label", Request{Method: "GET", Host: ".apps.example.com", Path: "/"}, ""},
		{"wildcard needs a dot boundary", Request{Method: "GET", Host: "fooapps.example.com", Path: "/"}, ""},
		{"header match", Request{Method: "DELETE", Path: "/shop/cart", Header: headerFunc("X-Canary", "1")}, "canary"},
		{"header value must be exact", Request{Method: "GET", Path: "/shop", Header: headerFunc("X-Canary", "10")}, "shop"},
		{"method list", Request{Method: "PUT", Path: "/shop/item"}, "shop-write"},
		{"method falls through to next route", Request{Method: "GET", Path: "/shop/item"}, "shop"},
		{"method matches nothing", Request{Method: "DELETE", Path: "/shop/item"}, ""},
		{"methods are case sensitive", Request{Method: "get", Path: "/shop/item"}, ""},
		{"all headers required", Request{Method: "GET", Path: "/both", Header: headerFunc("X-A", "1")}, ""},
		{"all headers present", Request{Method: "GET", Path: "/both", Header: headerFunc("X-A", "1", "X-B", "2")}, "multi-header"},
		{"nil header func matches no header rule", Request{Method: "GET", Path: "/both"}, ""},
		{"ipv6 host with port", Request{Method: "GET", Host: "[::1]:8080", Path: "/v6"}, "v6"},
		{"ipv6 host without port", Request{Method: "GET", Host: "[::1]", Path: "/v6"}, "v6"},
		{"nothing matches", Request{Method: "GET", Host: "example.org", Path: "/"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := table.Match(tc.req)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("Match = %q, want no match", got.Name)
			case tc.want != "" && got == nil:
				t.Fatalf("Match = nil, want %q", tc.want)
			case tc.want != "" && got.Name != tc.want:
				t.Fatalf("Match = %q, want %q", got.Name, tc.want)
			}
		})
	}
}

func TestCatchAllRoute(t *testing.T) {
	table := NewTable([]*Route[int]{
		{Name: "api", Matcher: Matcher{PathPrefix: "/api"}, Target: 1},
		{Name: "all", Target: 2},
	})
	if r := table.Match(Request{Method: "GET", Path: "/api/x"}); r == nil || r.Target != 1 {
		t.Fatalf("Match(/api/x) = %v, want target 1", r)
	}
	if r := table.Match(Request{Method: "PATCH", Host: "anything:1", Path: "/other"}); r == nil || r.Target != 2 {
		t.Fatalf("Match(/other) = %v, want the catch-all", r)
	}
}

func TestNilAndEmptyTable(t *testing.T) {
	var nilTable *Table[string]
	if r := nilTable.Match(Request{Method: "GET", Path: "/"}); r != nil {
		t.Fatalf("nil table matched %q", r.Name)
	}
	if r := NewTable[string](nil).Match(Request{Method: "GET", Path: "/"}); r != nil {
		t.Fatalf("empty table matched %q", r.Name)
	}
}

func TestNewTableLeavesRoutesUntouched(t *testing.T) {
	r := &Route[string]{Name: "a", Matcher: Matcher{Host: "API.Example.COM"}}
	table := NewTable([]*Route[string]{r})
	if r.Matcher.Host != "API.Example.COM" {
		t.Fatalf("NewTable rewrote the route's host to %q", r.Matcher.Host)
	}
	if table.Routes()[0] != r {
		t.Fatal("Routes() does not return the routes given")
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := map[string]string{
		"":                   "",
		"example.com":        "example.com",
		"Example.COM":        "example.com",
		"example.com:8080":   "example.com",
		"example.com.":       "example.com",
		"example.com.:80":    "example.com",
		"127.0.0.1:9":        "127.0.0.1",
		"[::1]:80":           "::1",
		"[::1]":              "::1",
		"::1":                "::1",
		"[2001:DB8::1]:8443": "2001:db8::1",
	}
	for in, want := range tests {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	table := benchTable()
	get := http.Header{"X-Canary": {"1"}}.Get
	req := Request{Method: "GET", Host: "svc18.example.com:8080", Path: "/svc18/items", Header: get}
	allocs := testing.AllocsPerRun(100, func() {
		if table.Match(req) == nil {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %v times per call, want 0", allocs)
	}
}

// benchTable is a 20-route table in the shape of a real config: host and
// prefix routes, one with methods, one with a header, a catch-all last.
func benchTable() *Table[int] {
	routes := make([]*Route[int], 0, 20)
	for i := range 19 {
		m := Matcher{Host: fmt.Sprintf("svc%d.example.com", i), PathPrefix: fmt.Sprintf("/svc%d/", i)}
		switch i % 3 {
		case 1:
			m.Methods = []string{"GET", "POST"}
		case 2:
			m.Headers = []Header{{Name: "X-Canary", Value: "1"}}
			m.Host = "*.example.com"
		}
		routes = append(routes, &Route[int]{Name: fmt.Sprintf("r%d", i), Matcher: m, Target: i})
	}
	routes = append(routes, &Route[int]{Name: "last", Matcher: Matcher{Host: "*.last.example.com", Path: "/last"}, Target: 19})
	return NewTable(routes)
}

func BenchmarkRouteMatch(b *testing.B) {
	table := benchTable()
	get := http.Header{"X-Canary": {"1"}}.Get
	cases := []struct {
		name string
		req  Request
		want int // -1: no match
	}{
		{"first", Request{Method: "GET", Host: "svc0.example.com", Path: "/svc0/items", Header: get}, 0},
		{"last", Request{Method: "GET", Host: "x.last.example.com:8080", Path: "/last", Header: get}, 19},
		{"miss", Request{Method: "GET", Host: "nowhere.example.org", Path: "/nothing", Header: get}, -1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := table.Match(c.req)
				if (r == nil) != (c.want < 0) || (r != nil && r.Target != c.want) {
					b.Fatalf("Match = %v, want %d", r, c.want)
				}
			}
		})
	}
}
