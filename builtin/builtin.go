// Package builtin holds the upstream servers that ship inside the switchyard
// binary (echo, http responder, chat), so that the default proxy.hcl runs with
// nothing else installed. Each handler lives in its own subpackage; this
// package names the contract the runtime drives them through.
package builtin

import (
	"context"
	"net"
)

// Server is a built-in server. The runtime binds the socket itself (so that a
// reload can bind every new address before it changes anything) and hands the
// listener to Serve.
type Server interface {
	// Serve accepts on ln until Shutdown is called. It returns nil after a
	// Shutdown and an error only when accepting failed for another reason.
	Serve(ln net.Listener) error
	// Shutdown stops accepting, lets in-flight work finish until ctx is done,
	// then closes what is left. Safe to call once Serve has started.
	Shutdown(ctx context.Context) error
}
