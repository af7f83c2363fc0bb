//go:build unix

package trustfile

import "syscall"

// nonBlock keeps the open of a FIFO from hanging; fstat then refuses it.
const nonBlock = syscall.O_NONBLOCK
