package tcpproxy

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketProgress returns bytes received plus bytes acknowledged on a TCP
// socket, from TCP_INFO: a counter that moves whenever data flows either way.
func socketProgress(c net.Conn) (uint64, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		info, sockErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || sockErr != nil {
		return 0, false
	}
	return info.Bytes_received + info.Bytes_acked, true
}
