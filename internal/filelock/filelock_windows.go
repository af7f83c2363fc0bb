//go:build windows

package filelock

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// Lock takes an exclusive lock on path, creating it if needed; a symbolic link there is refused.
// If another holds the lock, waiting (unless nil) is called before Lock blocks until it is free.
// The returned function releases the lock. On Windows the lock is LockFileEx on the whole file,
// which, like flock, the system releases when the handle is closed or the process dies.
func Lock(path string, waiting func()) (unlock func(), err error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, errors.New(path + " is a symbolic link; refusing to lock through it")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	h := windows.Handle(f.Fd())
	whole := uint32(^uint32(0))
	err = windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, whole, whole, new(windows.Overlapped))
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		if waiting != nil {
			waiting()
		}
		err = windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK, 0, whole, whole, new(windows.Overlapped))
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// TryLock takes the lock like Lock but never waits: ok is false, with no error, if another holds it.
func TryLock(path string) (unlock func(), ok bool, err error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, false, errors.New(path + " is a symbolic link; refusing to lock through it")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	whole := uint32(^uint32(0))
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, whole, whole, new(windows.Overlapped))
	if err != nil {
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}
