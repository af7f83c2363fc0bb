//go:build !unix && !windows

package filelock

import "errors"

// Lock fails: this system has no flock.
func Lock(string, func()) (func(), error) {
	return nil, errors.New("locking a file needs flock, which this system lacks")
}

// TryLock fails: this system has no flock.
func TryLock(string) (func(), bool, error) {
	return nil, false, errors.New("locking a file needs flock, which this system lacks")
}
