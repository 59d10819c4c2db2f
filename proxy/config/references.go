package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// checkReferences reports upstream names that no upstream block declares,
// and tcp listeners whose pool hashes on something a TCP connection lacks.
func (d *decoder) checkReferences(cfg *Config) {
	upstreams := map[string]*Upstream{}
	names := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		upstreams[u.Name] = u
		names = append(names, u.Name)
	}
	sort.Strings(names)
	declared := "no upstream blocks are declared"
	if len(names) > 0 {
		declared = "declared upstreams: " + strings.Join(names, ", ")
	}
	lookup := func(owner, name string, at hcl.Range) *Upstream {
		u, ok := upstreams[name]
		if !ok {
			d.errorf(at, "Unknown upstream", "%s refers to upstream %q, which is not declared; %s", owner, name, declared)
		}
		return u
	}
	for _, l := range cfg.Listeners {
		for _, r := range l.Routes {
			if r.Upstream != "" {
				lookup(fmt.Sprintf("route %q of listener %q", r.Name, l.Name), r.Upstream, r.UpstreamRange)
			}
		}
		if l.Protocol != "tcp" || l.Upstream == "" {
			continue
		}
		u := lookup(fmt.Sprintf("listener %q", l.Name), l.Upstream, l.UpstreamRange)
		if u != nil && u.HashOn != "" && u.HashOn != "client_ip" {
			d.errorf(l.UpstreamRange, "Hash key unavailable over TCP", "tcp listener %q uses upstream %q, which hashes on %q (at %s); a tcp connection has no HTTP path or headers, so a pool used by a tcp listener can only hash on client_ip", l.Name, u.Name, u.HashOn, formatPos(d.hashOnRanges[u]))
		}
	}
}

// boundAddress is something that binds a listen address.
type boundAddress struct {
	what string
	addr listenAddress
	text string
	at   hcl.Range
}

// checkAddressConflicts reports two listeners, builtins or the admin
// endpoint on one address; the later one in the file gets the error.
func (d *decoder) checkAddressConflicts(cfg *Config) {
	var bound []boundAddress
	add := func(what, text string, at hcl.Range) {
		if addr, err := parseListenAddress(text); err == nil && text != "" {
			bound = append(bound, boundAddress{what: what, addr: addr, text: text, at: at})
		}
	}
	if cfg.Admin != nil {
		add("the admin endpoint", cfg.Admin.Listen, cfg.Admin.ListenRange)
	}
	for _, l := range cfg.Listeners {
		add(fmt.Sprintf("listener %q", l.Name), l.Listen, l.ListenRange)
	}
	for _, b := range cfg.Builtins {
		add(fmt.Sprintf("builtin %q", b.Name), b.Listen, b.ListenRange)
	}
	sort.SliceStable(bound, func(i, j int) bool { return bound[i].at.Start.Byte < bound[j].at.Start.Byte })
	for i, later := range bound {
		for _, earlier := range bound[:i] {
			if !later.addr.overlaps(earlier.addr) {
				continue
			}
			relation := "is already used by"
			switch {
			case later.text == earlier.text:
			case later.addr == earlier.addr:
				relation = fmt.Sprintf("is the same address as %q, used by", earlier.text)
			default:
				relation = fmt.Sprintf("overlaps %q, used by", earlier.text)
			}
			d.errorf(later.at, "Address already in use", "%s listens on %q, which %s %s at %s", later.what, later.text, relation, earlier.what, formatPos(earlier.at))
			break
		}
	}
}
