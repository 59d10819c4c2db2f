package httpproxy

import (
	"errors"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The client side of the fast engine only makes syscalls that cannot block:
// every socket is non-blocking and epoll_wait is called with a zero
// timeout. They go through RawSyscall, which skips the runtime's
// entersyscall/exitsyscall: a loopback write runs the receiver's TCP stack
// inline and can take tens of microseconds, long enough for sysmon to take
// the P away and wake another thread, which is pure overhead for a call
// that was never going to block.

var errEINTR = unix.EINTR

func errnoErr(e syscall.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return unix.EAGAIN
	case unix.EINTR:
		return unix.EINTR
	}
	return e
}

// sysRead is read(2) on a non-blocking fd.
func sysRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// sysWrite is write(2) on a non-blocking fd.
func sysWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// sysClose closes a socket; closing never blocks without SO_LINGER.
func sysClose(fd int) error {
	_, _, e := syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errnoErr(e)
}

// sysEpollCtl is epoll_ctl(2).
func sysEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}

// sysEpollPoll is epoll_wait(2) with a zero timeout: it never blocks.
func sysEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(n), nil
}

// rawRead is one non-blocking read; EAGAIN becomes errWouldBlock.
func rawRead(fd int, p []byte) (int, error) {
	n, err := sysRead(fd, p)
	if err == unix.EAGAIN {
		return 0, errWouldBlock
	}
	return n, err
}

// isErrno reports a socket-level failure (reset, broken pipe, ...).
func isErrno(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// sysAccept4 accepts a non-blocking connection and returns the peer's IP.
// (unix.Accept4 also asks the listener for its protocol on every call, to
// tell L2TP sockets apart: a syscall per connection we do not need.)
func sysAccept4(lnFD int) (int, string, error) {
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	fd, _, e := syscall.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lnFD), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)),
		uintptr(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), 0, 0)
	if e != 0 {
		return -1, "", errnoErr(e)
	}
	return int(fd), rawSockaddrIP(&rsa), nil
}

func rawSockaddrIP(rsa *unix.RawSockaddrAny) string {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrFrom4(a.Addr).String()
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrFrom16(a.Addr).Unmap().String()
	}
	return ""
}

// sysSetNoDelay turns Nagle off, so a response written in two parts (head,
// then body) is not held back waiting for an ACK.
func sysSetNoDelay(fd int) {
	one := int32(1)
	_, _, _ = syscall.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
}
