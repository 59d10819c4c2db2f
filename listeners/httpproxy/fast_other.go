//go:build !linux

package httpproxy

import (
	"context"
	"net"

	"github.com/hashicorp/go-hclog"
)

// FastServer is unavailable on this platform; NewServer always fails.
type FastServer struct{}

// NewServer reports ErrFastUnsupported here.
func NewFastServer(net.Listener, *Options, Settings, hclog.Logger, Observer) (*FastServer, error) {
	return nil, ErrFastUnsupported
}

func (*FastServer) Serve() error                   { return ErrFastUnsupported }
func (*FastServer) Update(*Options, Settings)      {}
func (*FastServer) Shutdown(context.Context) error { return nil }
func (*FastServer) Addr() net.Addr                 { return nil }
func (*FastServer) ActiveConnections() int64       { return 0 }
func (*FastServer) TotalConnections() uint64       { return 0 }
func (*FastServer) Tunnels() int                   { return 0 }
