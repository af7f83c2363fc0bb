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
