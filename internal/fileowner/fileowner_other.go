//go:build !unix

package fileowner

import (
	"io/fs"
	"os"
)

// Of reports no owner: this system does not describe owners by uid and gid, and callers that
// check ownership must then refuse.
func Of(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// CopyTo does nothing: there are no numeric owners to copy here.
func CopyTo(*os.File, fs.FileInfo) error { return nil }
