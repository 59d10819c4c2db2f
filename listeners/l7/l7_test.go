package l7

import (
	"net/netip"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/", "/"},
		{"/api/x", "/api/x"},
		{"/%61dmin/x", "/admin/x"},
		{"/api/../admin/x", "/admin/x"},
		{"//admin/x", "/admin/x"},
		{"/./admin/x", "/admin/x"},
		{"/a//b///c", "/a/b/c"},
		{"/a/", "/a/"},
		{"/a/.", "/a/"},
		{"/a/..", "/"},
		{"/a/b/..", "/a/"},
		{"/a/./b/", "/a/b/"},
		{"/%2e/x", "/x"},
		{"/a/%2E%2e/b", "/b"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb", "/a%2Fb"},
		{"/%7euser", "/~user"},
		{"/%e2%82%ac", "/%E2%82%AC"},
		{"/..a/.b/a..", "/..a/.b/a.."},
		{"/a/.../b", "/a/.../b"},
	}
	for _, tc := range cases {
		got, changed, err := NormalizePath(nil, tc.in)
		if err != nil {
			t.Errorf("NormalizePath(%q): %v", tc.in, err)
			continue
		}
		s := tc.in
		if changed {
			s = string(got)
		}
		if s != tc.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tc.in, s, tc.want)
		}
		if changed != (tc.in != tc.want) {
			t.Errorf("NormalizePath(%q) changed = %v", tc.in, changed)
		}
		// Idempotent: the normal form is its own normal form.
		if _, again, _ := NormalizePath(nil, s); again {
			t.Errorf("normal form %q is not stable", s)
		}
	}
	for _, in := range []string{"/..", "/../x", "/a/../..", "/%2e%2e", "/a/%2E%2E/%2e%2e/b"} {
		if _, _, err := NormalizePath(nil, in); err != ErrPathAboveRoot {
			t.Errorf("NormalizePath(%q) error %v, want ErrPathAboveRoot", in, err)
		}
	}
}

func TestNormalizePathAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	raw := []byte("/a/./b/%7e/../c")
	clean := []byte("/api/v1/users")
	if n := testing.AllocsPerRun(100, func() {
		_, _, _ = NormalizePath(buf, raw)
		_, _, _ = NormalizePath(buf, clean)
	}); n != 0 {
		t.Fatalf("%v allocations per normalisation with a scratch buffer", n)
	}
}

func TestClassifyRequestField(t *testing.T) {
	cases := map[string]FieldClass{
		"Content-Length": FieldFraming, "transfer-encoding": FieldFraming, "HOST": FieldFraming,
		"Connection": FieldHopByHop, "Keep-Alive": FieldHopByHop, "TE": FieldHopByHop, "Upgrade": FieldHopByHop,
		"Trailer": FieldHopByHop, "Proxy-Connection": FieldHopByHop, "Proxy-Authorization": FieldHopByHop,
		"X-Forwarded-For": FieldProxyOwned, "X-Request-Id": FieldProxyOwned,
		"Forwarded": FieldForwarded, "X-Real-IP": FieldForwarded, "X-Forwarded-Port": FieldForwarded,
		"x-forwarded-prefix": FieldForwarded, "X-Forwarded-Host": FieldForwarded, "Client-Ip": FieldForwarded,
		"True-Client-IP":  FieldForwarded,
		"X_Forwarded_For": FieldUnderscore, "my_header": FieldUnderscore,
		"Accept": FieldEndToEnd, "Authorization": FieldEndToEnd, "X-Forwarded": FieldEndToEnd,
	}
	for name, want := range cases {
		if got := ClassifyRequestField(name); got != want {
			t.Errorf("ClassifyRequestField(%q) = %d, want %d", name, got, want)
		}
		if got := ClassifyRequestField([]byte(name)); got != want {
			t.Errorf("ClassifyRequestField([]byte %q) = %d, want %d", name, got, want)
		}
	}
}

func TestForwardPolicy(t *testing.T) {
	p := &ForwardPolicy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for ip, want := range map[string]bool{"10.1.2.3": true, "11.0.0.1": false, "::1": true, "::ffff:10.0.0.1": true, "junk": false} {
		if got := p.Trusts(ip); got != want {
			t.Errorf("Trusts(%q) = %v", ip, got)
		}
	}
	if (&ForwardPolicy{}).Trusts("10.0.0.1") {
		t.Error("an empty policy trusts a peer")
	}
	if p.ForwardsAsSent(FieldForwarded, false) || !p.ForwardsAsSent(FieldForwarded, true) {
		t.Error("Forwarded fields must pass from trusted peers only")
	}
	if p.ForwardsAsSent(FieldUnderscore, true) || !(&ForwardPolicy{AllowUnderscores: true}).ForwardsAsSent(FieldUnderscore, false) {
		t.Error("underscore fields follow AllowUnderscores")
	}
	for _, c := range []FieldClass{FieldHopByHop, FieldFraming, FieldProxyOwned} {
		if p.ForwardsAsSent(c, true) {
			t.Errorf("class %d forwarded as sent", c)
		}
	}
	if got := ForwardedFor("10.0.0.9", true, []string{"1.1.1.1", "2.2.2.2"}); got != "1.1.1.1, 2.2.2.2, 10.0.0.9" {
		t.Errorf("ForwardedFor trusted = %q", got)
	}
	if got := ForwardedFor("10.0.0.9", false, []string{"1.1.1.1"}); got != "10.0.0.9" {
		t.Errorf("ForwardedFor untrusted = %q", got)
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	for v, want := range map[string]bool{"websocket": true, "WebSocket": true, " h2c , websocket ": true, "h2c": false, "": false, "websockets": false} {
		if got := IsWebSocketUpgrade(v); got != want {
			t.Errorf("IsWebSocketUpgrade(%q) = %v", v, got)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x", "/%2e%2E/", "/a%2fb/./c/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) == 0 || in[0] != '/' {
			return
		}
		out, changed, err := NormalizePath(nil, in)
		if err != nil {
			return
		}
		s := in
		if changed {
			s = string(out)
		}
		if s[0] != '/' {
			t.Fatalf("%q normalised to %q", in, s)
		}
		if _, again, err := NormalizePath(nil, s); again || err != nil {
			t.Fatalf("%q normalised to %q, which is not stable", in, s)
		}
	})
}
