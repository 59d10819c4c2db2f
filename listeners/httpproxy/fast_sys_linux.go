package httpproxy

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

var errEINTR = unix.EINTR

// rawRead is one non-blocking read(2); EAGAIN becomes errWouldBlock.
func rawRead(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	if err == unix.EAGAIN {
		return 0, errWouldBlock
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// isErrno reports a socket-level failure (reset, broken pipe, ...).
func isErrno(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}
