//go:build unix

package policy

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// fileOwner returns the uid owning a file described by Stat or Lstat.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// chownLike gives f the owner and group of fi. Without the privilege to do
// so (not root) the file keeps the caller's ownership.
func chownLike(f *os.File, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	err := f.Chown(int(st.Uid), int(st.Gid))
	if errors.Is(err, syscall.EPERM) {
		return nil
	}
	return err
}

// lockFile takes an exclusive flock on path, creating it if needed, and
// returns the function that releases it. flock locks belong to the open
// file description, so two opens exclude each other even in one process.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
