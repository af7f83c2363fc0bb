// Package atomicfile replaces files so that a crash or a full disk leaves either the old or the
// new content, never a truncated file: the data goes to a synced temporary file in the same
// directory (with a random name, removed on any error), which is then renamed over the target,
// or linked to it when an existing file must never be replaced.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opkssh-team/opkssh/internal/fileowner"
)

// Options say what the new file gets besides its data.
type Options struct {
	// Mode is the new file's permission bits, whatever the umask.
	Mode os.FileMode
	// Owner, if not nil, is given to the new file (this needs the privilege to change owners).
	Owner *Owner
	// Like, if not nil, describes the file being replaced: the new file gets its permission bits
	// in place of Mode, and its owner and group as far as the caller may (fileowner.CopyTo).
	Like fs.FileInfo
	// NoReplace makes Write fail with an error wrapping fs.ErrExist if path exists: the new file
	// is linked into place, which never replaces a file, instead of renamed.
	NoReplace bool
}

// Owner is a numeric owner and group.
type Owner struct{ UID, GID int }

// Write replaces path with data and gives it mode (whatever the umask). The directory must exist.
func Write(path string, data []byte, mode os.FileMode) error {
	return WriteWith(path, data, Options{Mode: mode})
}

// WriteWith writes data to path as o says. The directory must exist.
func WriteWith(path string, data []byte, o Options) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename; removes the link's source
	err = prepare(tmp, data, o)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if o.NoReplace {
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s: %w", path, fs.ErrExist)
			}
			return err
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return nil
}

// prepare gives the temporary file its mode, owner and data, and syncs it.
func prepare(tmp *os.File, data []byte, o Options) error {
	mode := o.Mode
	if o.Like != nil {
		mode = o.Like.Mode().Perm()
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	switch {
	case o.Like != nil:
		if err := fileowner.CopyTo(tmp, o.Like); err != nil {
			return err
		}
	case o.Owner != nil:
		if err := tmp.Chown(o.Owner.UID, o.Owner.GID); err != nil {
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	return tmp.Sync()
}
