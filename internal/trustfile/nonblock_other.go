//go:build !unix

package trustfile

const nonBlock = 0
