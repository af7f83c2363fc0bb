//go:build !linux

package sandbox

import "errors"

// Main runs the tests directly: only Linux has the mount namespaces a sandbox needs.
func Main(o Options, run func(unavailable error) int) int {
	return run(errors.New("an isolated file-system view needs Linux mount namespaces"))
}
