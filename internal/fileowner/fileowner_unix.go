//go:build unix

package fileowner

import (
	"io/fs"
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
