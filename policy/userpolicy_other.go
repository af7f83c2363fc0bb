//go:build !linux

package policy

import "fmt"

// readUserFile needs Linux's O_PATH to walk a home that the verify user may search but not read.
func readUserFile(acct UserAccount, rel string) ([]byte, error) {
	return nil, fmt.Errorf("%w: user policies are read on Linux only", ErrNoUserFile)
}
