//go:build !unix

package policy

import (
	"errors"
	"io/fs"
	"os"
)

// fileOwner cannot tell the owner here, so Load refuses every file.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

func chownLike(*os.File, fs.FileInfo) error { return nil }

func lockFile(string) (func(), error) {
	return nil, errors.New("editing the policy needs flock, which this system lacks")
}
