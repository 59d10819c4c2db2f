package tcpproxy

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tcpInfoCountersEnd is how much of struct tcp_info the kernel must fill for
// the byte counters to be there (tcpi_bytes_acked and tcpi_bytes_received
// arrived in Linux 4.1; older kernels return a shorter struct and would leave
// them zero, which would look like a session that never moves).
const tcpInfoCountersEnd = max(
	unsafe.Offsetof(unix.TCPInfo{}.Bytes_acked)+unsafe.Sizeof(unix.TCPInfo{}.Bytes_acked),
	unsafe.Offsetof(unix.TCPInfo{}.Bytes_received)+unsafe.Sizeof(unix.TCPInfo{}.Bytes_received),
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
	var info unix.TCPInfo
	size := uint32(unsafe.Sizeof(info))
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		// x/sys's GetsockoptTCPInfo hides how much the kernel filled in, and
		// that length is what tells whether the counters exist.
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	}); err != nil || errno != 0 || uintptr(size) < tcpInfoCountersEnd {
		return 0, false
	}
	return info.Bytes_received + info.Bytes_acked, true
}
