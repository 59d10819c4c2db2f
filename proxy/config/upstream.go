package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var upstreamSchema = blockSchema{
	attributes: []string{"strategy", "hash_on", "connect_timeout"},
	blocks:     []string{"backend", "health_check", "circuit_breaker"},
}

func (d *decoder) decodeUpstream(blk *hclsyntax.Block) *Upstream {
	u := &Upstream{Name: blk.Labels[0], DeclRange: blk.DefRange()}
	what := fmt.Sprintf("upstream %q", u.Name)
	b := d.decodeBody(blk.Body, what, u.DeclRange, upstreamSchema)

	strategy, strategyOK := b.enum("strategy", "strategy", DefaultStrategy, Strategies)
	u.Strategy = strategy
	hashOn := b.string("hash_on", "")
	_, hashOnSet := b.values["hash_on"]
	if hashOnSet {
		if err := checkHashOn(hashOn); err != nil {
			d.errorf(b.exprRange("hash_on"), "Invalid hash_on", "%v", err)
		}
	}
	switch {
	case !strategyOK:
		// Whether hash_on belongs here depends on the strategy.
	case strategy == "consistent_hash" && !b.present("hash_on"):
		d.errorf(b.exprRange("strategy"), "Missing hash_on", "strategy \"consistent_hash\" needs hash_on = %q, %q or %q in %s", "client_ip", "path", "header:NAME", what)
	case strategy != "consistent_hash" && b.present("hash_on"):
		d.errorf(b.attrRange("hash_on"), "Unused hash_on", "hash_on only applies to strategy \"consistent_hash\", but %s uses strategy %q", what, strategy)
	case hashOnSet:
		u.HashOn = hashOn
		d.hashOnRanges[u] = b.exprRange("hash_on")
	}
	u.ConnectTimeout = b.duration("connect_timeout", DefaultConnectTimeout, false)

	backends := map[string]hcl.Range{}
	seen := map[string]hcl.Range{}
	for _, nested := range b.blocks {
		switch nested.Type {
		case "backend":
			if !d.checkLabels(nested, []string{"ADDRESS"}) {
				continue
			}
			if be := d.decodeBackend(what, nested, backends); be != nil {
				u.Backends = append(u.Backends, be)
			}
		case "health_check":
			if d.checkLabels(nested, nil) && d.firstOfKind(seen, nested) {
				u.HealthCheck = d.decodeHealthCheck(what, nested)
			}
		case "circuit_breaker":
			if d.checkLabels(nested, nil) && d.firstOfKind(seen, nested) {
				u.CircuitBreaker = d.decodeCircuitBreaker(what, nested)
			}
		}
	}
	if u.CircuitBreaker == nil {
		u.CircuitBreaker = &CircuitBreaker{
			ConsecutiveFailures: DefaultBreakerFailures,
			FailureRatio:        DefaultBreakerRatio,
			MinRequests:         DefaultBreakerMinReqs,
			OpenTimeout:         DefaultBreakerOpen,
			HalfOpenRequests:    DefaultBreakerHalfOpen,
		}
	}
	if !hasBlock(b.blocks, "backend") {
		d.errorf(u.DeclRange, "Upstream without backends", "%s has no backends; add at least one backend \"HOST:PORT\" {} block", what)
	}
	return u
}

var backendSchema = blockSchema{attributes: []string{"weight"}}

// decodeBackend decodes one backend; seen maps normalised addresses to where
// they were declared, so "localhost:80" and "127.0.0.1:80" count as one.
func (d *decoder) decodeBackend(upstream string, blk *hclsyntax.Block, seen map[string]hcl.Range) *Backend {
	be := &Backend{Address: blk.Labels[0], DeclRange: blk.DefRange()}
	at := blk.LabelRanges[0]
	b := d.decodeBody(blk.Body, fmt.Sprintf("backend %q of %s", be.Address, upstream), be.DeclRange, backendSchema)
	be.Weight = b.int("weight", 1, 1)
	key, err := parseBackendAddress(be.Address)
	if err != nil {
		d.errorf(at, "Invalid backend address", "%v", err)
		return be
	}
	if prev, dup := seen[key]; dup {
		d.errorf(at, "Duplicate backend", "backend %q is declared twice in %s; previously declared at %s", be.Address, upstream, formatPos(prev))
		return nil
	}
	seen[key] = at
	return be
}

var healthCheckSchema = blockSchema{attributes: []string{"interval", "timeout", "path", "healthy_threshold", "unhealthy_threshold"}}

func (d *decoder) decodeHealthCheck(upstream string, blk *hclsyntax.Block) *HealthCheck {
	b := d.decodeBody(blk.Body, "health_check of "+upstream, blk.DefRange(), healthCheckSchema)
	hc := &HealthCheck{
		Interval:           b.duration("interval", DefaultHealthInterval, false),
		Timeout:            b.duration("timeout", DefaultHealthTimeout, false),
		Path:               b.path("path"),
		HealthyThreshold:   b.int("healthy_threshold", DefaultHealthyThreshold, 1),
		UnhealthyThreshold: b.int("unhealthy_threshold", DefaultUnhealthyThresh, 1),
	}
	// A check that may outlast its interval would overlap the next one.
	if hc.Timeout > hc.Interval && !b.failed["timeout"] && !b.failed["interval"] {
		at := b.exprRange("timeout")
		if !b.present("timeout") {
			at = b.exprRange("interval")
		}
		timeout := fmt.Sprintf("timeout %s", hc.Timeout)
		if !b.present("timeout") {
			timeout = fmt.Sprintf("the default timeout %s", hc.Timeout)
		}
		d.errorf(at, "Health check timeout too long", "%s is longer than interval %s; a check must finish before the next one starts", timeout, hc.Interval)
	}
	return hc
}

var circuitBreakerSchema = blockSchema{attributes: []string{"consecutive_failures", "failure_ratio", "min_requests", "open_timeout", "half_open_requests"}}

func (d *decoder) decodeCircuitBreaker(upstream string, blk *hclsyntax.Block) *CircuitBreaker {
	b := d.decodeBody(blk.Body, "circuit_breaker of "+upstream, blk.DefRange(), circuitBreakerSchema)
	return &CircuitBreaker{
		ConsecutiveFailures: b.int("consecutive_failures", DefaultBreakerFailures, 1),
		FailureRatio:        b.fraction("failure_ratio", DefaultBreakerRatio),
		MinRequests:         b.int("min_requests", DefaultBreakerMinReqs, 1),
		OpenTimeout:         b.duration("open_timeout", DefaultBreakerOpen, false),
		HalfOpenRequests:    b.int("half_open_requests", DefaultBreakerHalfOpen, 1),
	}
}

func hasBlock(blocks []*hclsyntax.Block, blockType string) bool {
	for _, b := range blocks {
		if b.Type == blockType {
			return true
		}
	}
	return false
}
