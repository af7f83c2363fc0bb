package policy

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
	"syscall"
	"time"

	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/trustfile"
)

// ErrUnsafeFile is wrapped by Load's errors for a policy file or directory
// that is not a regular file (or directory), is a symbolic link leading out
// of its directory, is owned by an untrusted user or is writable by group or
// others.
var ErrUnsafeFile = errors.New("unsafe policy file")

// LoadOptions says where the policy is and whom to trust.
type LoadOptions struct {
	// Path is the main file, e.g. /etc/opkssh/policies.yaml. It must exist.
	Path string
	// DropInDir holds more files, e.g. /etc/opkssh/policies.d; its *.yaml
	// files (not starting with '.') are merged in name order after Path.
	// "" means none; a missing directory is fine.
	DropInDir string
	// TrustedUIDs are the owners files and directories may have; empty
	// means root only.
	TrustedUIDs []int
	// SnapshotBuildWait bounds how long LoadForPrincipal waits for another
	// process to build the policy snapshot before it loads the policy itself:
	// a builder that hangs or keeps failing costs the others this much.
	// 0 means DefaultSnapshotBuildWait.
	SnapshotBuildWait time.Duration

	// parsed, if set, is called each time LoadForPrincipal parses the
	// policy with a usable cache directory (the tests of the build lock).
	parsed func()
}

// Load reads, checks and merges the policy files. Any error means the whole
// policy is unusable and the caller must deny every login; problems inside
// one provider block are not errors but entries of Policy.Broken.
func Load(opts LoadOptions) (*Policy, error) {
	trusted := opts.TrustedUIDs
	if len(trusted) == 0 {
		trusted = []int{0}
	}
	if err := checkAbove(opts.Path, trusted); err != nil {
		return nil, err
	}
	errs := &errList{}
	data, err := readMain(opts.Path, trusted)
	if err != nil {
		return nil, err
	}
	frags := []*fragment{parseFile(opts.Path, data, errs)}
	if opts.DropInDir != "" {
		more, err := readDropIns(opts.DropInDir, trusted)
		if err != nil {
			return nil, err
		}
		for _, f := range more {
			frags = append(frags, parseFile(f.path, f.data, errs))
		}
	}
	return assemble(frags, errs)
}

// checkAbove applies the rules of internal/trustfile to every directory above the policy's own
// (which openTrustedDir checks on its descriptor): whoever can write any of them can swap the
// policy directory for one of theirs.
func checkAbove(path string, trusted []int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := trustfile.CheckDir(filepath.Dir(filepath.Dir(abs)), trustfile.Rules{TrustedUIDs: trusted, What: "policy file"}); err != nil {
		if errors.Is(err, trustfile.ErrUnsafe) {
			return fmt.Errorf("%w: %v", ErrUnsafeFile, err)
		}
		return err
	}
	return nil
}

func readMain(path string, trusted []int) ([]byte, error) {
	data, err := readInDir(path, trusted)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("policy file %s does not exist; create it (owned by root, mode 644) starting with version: 1", path)
	}
	return data, err
}

// readInDir checks path's directory, then reads path from it.
func readInDir(path string, trusted []int) ([]byte, error) {
	dir, err := openTrustedDir(filepath.Dir(path), trusted)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return readTrustedFile(dir, path, trusted)
}

type dropIn struct {
	path string
	data []byte
}

func readDropIns(dirPath string, trusted []int) ([]dropIn, error) {
	dir, err := openTrustedDir(dirPath, trusted)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	names, err := readDirNames(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policy directory %s: %w", dirPath, err)
	}
	slices.Sort(names)
	var files []dropIn
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dirPath, name)
		data, err := readTrustedFile(dir, path, trusted)
		if err != nil {
			return nil, err
		}
		files = append(files, dropIn{path, data})
	}
	return files, nil
}

// openTrustedDir opens a directory as an os.Root and checks the open
// directory, so the check and the lookups of files inside it concern the same
// directory even if the path is swapped meanwhile.
func openTrustedDir(path string, trusted []int) (*os.Root, error) {
	d, err := os.OpenRoot(path)
	if err != nil {
		// Only to word the error: os.OpenRoot does not say why.
		if fi, statErr := os.Stat(path); statErr == nil && !fi.IsDir() {
			return nil, fmt.Errorf("%w: policy directory %s is a %s; it must be a directory", ErrUnsafeFile, path, typeName(fi.Mode()))
		}
		return nil, err
	}
	fi, err := d.Stat(".")
	if err == nil {
		err = checkTrusted(fi, path, trusted, true)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// readTrustedFile opens path's base name inside the checked directory dir,
// checks the open file with fstat and reads it through the same descriptor.
// os.Root follows a symbolic link only if it stays inside dir.
func readTrustedFile(dir *os.Root, path string, trusted []int) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not hang; fstat then refuses it.
	f, err := dir.OpenFile(filepath.Base(path), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: opening %s: %v; a symbolic link may only point inside its own directory", ErrUnsafeFile, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkTrusted(fi, path, trusted, false); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// checkTrusted checks the type, owner and mode of an open file or directory.
func checkTrusted(fi fs.FileInfo, path string, trusted []int, isDir bool) error {
	kind, want, mode := "policy file", "regular file", "644"
	if isDir {
		kind, want, mode = "policy directory", "directory", "755"
	}
	if isDir != fi.IsDir() || !isDir && !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s %s is a %s; it must be a %s", ErrUnsafeFile, kind, path, typeName(fi.Mode()), want)
	}
	uid, _, ok := fileowner.Of(fi)
	if !ok {
		return fmt.Errorf("%w: cannot read the owner of %s on this system", ErrUnsafeFile, path)
	}
	var problems []string
	if !slices.Contains(trusted, uid) {
		problems = append(problems, fmt.Sprintf("is owned by uid %d, which is not trusted", uid))
	}
	if fi.Mode().Perm()&0o022 != 0 {
		problems = append(problems, fmt.Sprintf("is writable by group or others (mode %04o)", fi.Mode().Perm()))
	}
	if problems == nil {
		return nil
	}
	owner := "root:root"
	if !slices.Contains(trusted, 0) {
		owner = strconv.Itoa(trusted[0])
	}
	return fmt.Errorf("%w: %s %s %s; fix: chown %s %s && chmod %s %s", ErrUnsafeFile, kind, path, strings.Join(problems, " and "), owner, path, mode, path)
}

func readDirNames(dir *os.Root) ([]string, error) {
	d, err := dir.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}
