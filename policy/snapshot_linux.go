package policy

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileIdentity is what changes whenever a file's content may have: its inode, and its
// modification and change times to the nanosecond (the change time cannot be set back by hand).
func fileIdentity(fi fs.FileInfo) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%d %d.%d %d.%d", st.Ino, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec), true
}
