package tcpproxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawPipe moves message-sized traffic from src to dst with read(2) and
// write(2) issued as raw syscalls inside the runtime poller's callbacks.
// The sockets are non-blocking, so the calls never block; skipping the
// runtime's syscall bookkeeping keeps sysmon from handing the P to another
// thread while a loopback write runs the peer's TCP stack inline. The
// poller still parks the goroutine when there is nothing to read or no
// room to write.
type rawPipe struct {
	src, dst syscall.RawConn
	buf      []byte
	p        []byte // what the current write still has to send
	n        int
	errno    syscall.Errno
	readFn   func(uintptr) bool // bound once: no allocation per call
	writeFn  func(uintptr) bool
}

func newRawPipe(dst, src net.Conn, buf []byte) (*rawPipe, bool) {
	sc, ok1 := src.(syscall.Conn)
	dc, ok2 := dst.(syscall.Conn)
	if !ok1 || !ok2 {
		return nil, false
	}
	srcRaw, err1 := sc.SyscallConn()
	dstRaw, err2 := dc.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil, false
	}
	rp := &rawPipe{src: srcRaw, dst: dstRaw, buf: buf}
	rp.readFn = rp.readOnce
	rp.writeFn = rp.writeOnce
	return rp, true
}

func (rp *rawPipe) readOnce(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&rp.buf[0])), uintptr(len(rp.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // park until readable
		}
		rp.n, rp.errno = int(r), e
		return true
	}
}

func (rp *rawPipe) writeOnce(fd uintptr) bool {
	for len(rp.p) > 0 {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rp.p[0])), uintptr(len(rp.p)))
		switch e {
		case 0:
			rp.p = rp.p[r:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // park until writable
		default:
			rp.errno = e
			return true
		}
	}
	return true
}

// read fills buf once; io.EOF at the end of the stream.
func (rp *rawPipe) read() (int, error) {
	rp.n, rp.errno = 0, 0
	if err := rp.src.Read(rp.readFn); err != nil {
		return 0, err
	}
	if rp.errno != 0 {
		return 0, rp.errno
	}
	if rp.n == 0 {
		return 0, io.EOF
	}
	return rp.n, nil
}

// write sends all of p.
func (rp *rawPipe) write(p []byte) error {
	rp.p, rp.errno = p, 0
	if err := rp.dst.Write(rp.writeFn); err != nil {
		return err
	}
	if rp.errno != 0 {
		return rp.errno
	}
	return nil
}
