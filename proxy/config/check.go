package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
)

// namePattern keeps names usable as metric labels, log fields and URL parts.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// methodPattern accepts upper-case method tokens such as GET or M-SEARCH.
var methodPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%q is not a valid name; use letters, digits, '-', '_' and '.', starting with a letter or digit", name)
	}
	return nil
}

// listenAddress is a parsed address to bind.
type listenAddress struct {
	host string // normalised: "" for every interface, otherwise an IP
	port int
}

// parseListenAddress checks a bind address: host:port with an IP,
// "localhost" or an empty host (every interface) and a port 0-65535, where
// 0 asks the kernel for a free port.
func parseListenAddress(addr string) (listenAddress, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return listenAddress{}, fmt.Errorf("%q is not host:port: %w", addr, unwrapAddrError(err))
	}
	port, err := parsePort(portText, 0)
	if err != nil {
		return listenAddress{}, fmt.Errorf("%q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		// Go binds all of these dual-stack, so they are the same socket.
		return listenAddress{host: "", port: port}, nil
	case "localhost":
		return listenAddress{host: "127.0.0.1", port: port}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return listenAddress{}, fmt.Errorf("%q: host %q must be an IP address, \"localhost\" or empty (every interface)", addr, host)
	}
	return listenAddress{host: ip.Unmap().String(), port: port}, nil
}

// overlaps reports whether binding both addresses would collide. Port 0
// picks a free port each time, so it never collides.
func (a listenAddress) overlaps(b listenAddress) bool {
	if a.port == 0 || a.port != b.port {
		return false
	}
	return a.host == "" || b.host == "" || a.host == b.host
}

// parseBackendAddress checks an address to dial: host:port with an IP or a
// DNS name and a port 1-65535. Names are only checked for shape; nothing is
// resolved while decoding.
func parseBackendAddress(addr string) (string, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %w", addr, unwrapAddrError(err))
	}
	port, err := parsePort(portText, 1)
	if err != nil {
		return "", fmt.Errorf("%q: %w", addr, err)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host; write an IP address or a host name before the port", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	} else if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else if err := checkHostname(host); err != nil {
		return "", fmt.Errorf("%q: host %q is neither an IP address nor a host name: %w", addr, host, err)
	} else {
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func parsePort(text string, min int) (int, error) {
	port, err := strconv.Atoi(text)
	if err != nil || port < min || port > 65535 || strings.HasPrefix(text, "+") {
		return 0, fmt.Errorf("port %q must be a number from %d to 65535", text, min)
	}
	return port, nil
}

// unwrapAddrError drops the address that net.AddrError repeats.
func unwrapAddrError(err error) error {
	var addrErr *net.AddrError
	if errors.As(err, &addrErr) {
		return errors.New(addrErr.Err)
	}
	return err
}

// checkHostname accepts DNS names: dot-separated labels of letters, digits,
// '-' and '_', each 1-63 characters, not starting or ending with '-'.
func checkHostname(host string) error {
	if len(host) > 253 {
		return errors.New("a host name has at most 253 characters")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q is longer than 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("label %q contains %q", label, c)
			}
		}
	}
	return nil
}

// checkHostPattern accepts an exact host name or "*." followed by one: the
// wildcard stands for exactly one leading label.
func checkHostPattern(pattern string) error {
	if strings.Contains(pattern, ":") {
		return fmt.Errorf("host %q must not include a port; the port of the request's Host is ignored when matching", pattern)
	}
	rest := strings.TrimPrefix(pattern, "*.")
	if strings.Contains(rest, "*") {
		return fmt.Errorf("host %q is not an exact name or \"*.\" followed by one; a wildcard can only stand for the whole first label, as in \"*.example.com\"", pattern)
	}
	if err := checkHostname(rest); err != nil {
		return fmt.Errorf("host %q is not a valid host name: %w", pattern, err)
	}
	return nil
}

// checkPath accepts absolute URL paths without query, fragment, spaces or
// control characters, which could never match a request path.
func checkPath(name, path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("%s %q must start with \"/\"", name, path)
	}
	for _, c := range path {
		switch {
		case c == '?' || c == '#':
			return fmt.Errorf("%s %q must not contain %q; only the path part of a URL is matched", name, path, c)
		case c <= ' ' || c == 0x7f:
			return fmt.Errorf("%s %q must not contain spaces or control characters", name, path)
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, the syntax of header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters (other than tab), which would
// let a value end the header line.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkHashOn accepts client_ip, path and header:NAME.
func checkHashOn(v string) error {
	name, isHeader := strings.CutPrefix(v, "header:")
	switch {
	case v == "client_ip" || v == "path":
		return nil
	case isHeader && name == "":
		return fmt.Errorf("hash_on %q needs a header name after \"header:\", such as \"header:X-User\"", v)
	case isHeader && !isToken(name):
		return fmt.Errorf("hash_on %q: %q is not a valid header name", v, name)
	case isHeader:
		return nil
	}
	return fmt.Errorf("hash_on %q is not one of %s", v, strings.Join(HashOn, ", "))
}

// canonicalHeader is the form header names are stored in.
func canonicalHeader(name string) string {
	return textproto.CanonicalMIMEHeaderKey(name)
}
