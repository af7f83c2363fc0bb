//go:build unix

package fileowner

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// Of returns the owner's uid and gid of fi, which must come from os.Stat, os.Lstat or File.Stat.
func Of(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// CopyTo gives f the owner and group of fi, as far as the caller may: without the privilege to
// change owners (not root), f keeps the caller's, and that is no error.
func CopyTo(f *os.File, fi fs.FileInfo) error {
	uid, gid, ok := Of(fi)
	if !ok {
		return nil
	}
	if err := f.Chown(uid, gid); err != nil && !errors.Is(err, syscall.EPERM) {
		return err
	}
	return nil
}
