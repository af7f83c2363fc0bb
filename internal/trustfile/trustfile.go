// Package trustfile reads the files that decide who may log in — pinned keys, extra CA roots, and
// the directories above the policy — under the rules sshd applies to its own: the file and every
// directory above it are owned by a trusted user (root, or an owner the administrator named) and
// writable by nobody else. Whoever could write any of them could put their own key there and log in
// as anyone.
//
// The path is resolved once (symbolic links are allowed where trusted users put them), then
// walked from / one directory at a time through open descriptors, and each step is checked with
// fstat on what was opened: a link swapped in after the check is refused, never followed. A
// world-writable directory is accepted only with the sticky bit and a root owner (/tmp), where
// others cannot rename what they do not own. The file must be a regular file no larger than the
// caller's limit.
package trustfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opkssh-team/opkssh/internal/fileowner"
)

// ErrUnsafe matches (errors.Is) every error about a file or directory that fails the ownership,
// mode or type rules, as opposed to one that is missing or unreadable.
var ErrUnsafe = errors.New("unsafe file")

// unsafeError is such an error; its text is the problem and the fix, without a prefix.
type unsafeError struct{ msg string }

func (e *unsafeError) Error() string        { return e.msg }
func (e *unsafeError) Is(target error) bool { return target == ErrUnsafe }

func unsafef(format string, args ...any) error {
	return &unsafeError{msg: fmt.Sprintf(format, args...)}
}

// Rules say whom to trust. The zero value trusts root only.
type Rules struct {
	TrustedUIDs []int  // owners allowed besides root
	What        string // what the file is, for messages: "jwks_file", "ca_file"
}

func (r Rules) trusted(uid int) bool { return uid == 0 || slices.Contains(r.TrustedUIDs, uid) }

func (r Rules) what() string {
	if r.What == "" {
		return "file"
	}
	return r.What
}

// Read checks path and every directory above it and returns the file's content, at most max bytes.
func Read(path string, max int64, r Rules) ([]byte, error) {
	f, err := Open(path, r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.what(), path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", r.what(), path, max)
	}
	return data, nil
}

// Check applies the rules to path and every directory above it without reading the file.
func Check(path string, r Rules) error {
	f, err := Open(path, r)
	if err != nil {
		return err
	}
	return f.Close()
}

// Open checks path and every directory above it and returns the file opened for reading.
func Open(path string, r Rules) (*os.File, error) {
	dir, real, err := r.walk(path, false)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	base := filepath.Base(real)
	if fi, err := dir.Lstat(base); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, unsafef("%s %s became a symbolic link while it was checked", r.what(), path)
	}
	f, err := dir.OpenFile(base, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.what(), path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = r.check(fi, real, path, false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CheckDir applies the rules to the directory path and every directory above it.
func CheckDir(path string, r Rules) error {
	dir, _, err := r.walk(path, true)
	if err != nil {
		return err
	}
	return dir.Close()
}

// walk resolves path once, then opens and checks each directory from / down: to path's parent
// (file) or to path itself (isDir). It returns the last directory opened and the resolved path.
func (r Rules) walk(path string, isDir bool) (*os.Root, string, error) {
	if !filepath.IsAbs(path) {
		return nil, "", unsafef("%s %q is not an absolute path", r.what(), path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", r.what(), path, err)
	}
	real = filepath.Clean(real)
	dir, err := os.OpenRoot(string(filepath.Separator))
	if err != nil {
		return nil, "", err
	}
	at := string(filepath.Separator)
	if err := r.checkDir(dir, at, path); err != nil {
		dir.Close()
		return nil, "", err
	}
	var parts []string
	if rel := strings.TrimPrefix(real, string(filepath.Separator)); rel != "" {
		parts = strings.Split(rel, string(filepath.Separator))
	}
	if !isDir {
		if len(parts) == 0 {
			dir.Close()
			return nil, "", unsafef("%s %s is not a regular file", r.what(), path)
		}
		parts = parts[:len(parts)-1]
	}
	for _, name := range parts {
		at = filepath.Join(at, name)
		if fi, err := dir.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			dir.Close()
			return nil, "", unsafef("%s %s: %s became a symbolic link while it was checked", r.what(), path, at)
		}
		next, err := dir.OpenRoot(name)
		dir.Close()
		if err != nil {
			return nil, "", fmt.Errorf("%s %s: %w", r.what(), path, err)
		}
		dir = next
		if err := r.checkDir(dir, at, path); err != nil {
			dir.Close()
			return nil, "", err
		}
	}
	return dir, real, nil
}

func (r Rules) checkDir(dir *os.Root, at, path string) error {
	fi, err := dir.Stat(".")
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.what(), path, err)
	}
	return r.check(fi, at, path, true)
}

// check applies the type, owner and mode rules to an opened file or directory at (path is what
// the administrator wrote, for the message).
func (r Rules) check(fi fs.FileInfo, at, path string, isDir bool) error {
	where := r.what() + " " + path + ": " + at
	if at == path {
		where = r.what() + " " + path
	}
	if isDir && !fi.IsDir() || !isDir && !fi.Mode().IsRegular() {
		return unsafef("%s is not a %s", where, map[bool]string{true: "directory", false: "regular file"}[isDir])
	}
	uid, _, ok := fileowner.Of(fi)
	if !ok {
		return unsafef("%s: cannot read its owner on this system", where)
	}
	mode := fi.Mode()
	var problems []string
	if !r.trusted(uid) {
		problems = append(problems, "is owned by uid "+strconv.Itoa(uid)+", not by root or a trusted owner")
	}
	if mode.Perm()&0o022 != 0 && !(isDir && mode&fs.ModeSticky != 0 && mode.Perm()&0o002 != 0 && uid == 0) {
		problems = append(problems, fmt.Sprintf("is writable by group or others (mode %04o)", mode.Perm()))
	}
	if problems == nil {
		return nil
	}
	fix := "chown root " + at + " && chmod go-w " + at
	return unsafef("%s %s; whoever can write it can log in as anyone: %s", where, strings.Join(problems, " and "), fix)
}
