package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// oPath is Linux's O_PATH (the same value on every architecture Go runs on; package syscall does
// not define it for 386 and amd64). Opening with it needs search permission on the directory that
// holds the name and no permission on the name itself: enough to fstat it and to open names below
// it with openat, so the verify user needs only x, never r, on the user's directories.
const oPath = 0x200000

// atFDCWD is Linux's AT_FDCWD, which package syscall does not export.
const atFDCWD = -100

// readUserFile walks from acct.Home down to rel one component at a time with openat, never
// following a symbolic link, checks every directory and the file on its open descriptor, and
// reads the file.
func readUserFile(acct UserAccount, rel string) ([]byte, error) {
	path := filepath.Join(acct.Home, rel)
	// The home itself is followed if it is a symbolic link: its path comes from the system's
	// user database, which root controls (sshd's StrictModes also starts at the home).
	dir, err := openPath(atFDCWD, acct.Home, true)
	if err != nil {
		return nil, unreachable(path, acct.Home, err)
	}
	defer func() { syscall.Close(dir) }()
	var unsafe error // the first unsafe directory: reported only if the file turns out to exist
	if st, err := fstat(dir); err != nil {
		return nil, fmt.Errorf("%w: user policy %s: fstat %s: %v", ErrUnsafeFile, path, acct.Home, err)
	} else if err := checkUserStat(&st, acct, acct.Home, true); err != nil {
		unsafe = err
	}
	names := strings.Split(rel, "/")
	cur := acct.Home
	for _, name := range names[:len(names)-1] {
		cur = filepath.Join(cur, name)
		next, err := openPath(dir, name, false)
		if err != nil {
			return nil, unreachable(path, cur, err)
		}
		syscall.Close(dir)
		dir = next
		st, err := fstat(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: user policy %s: fstat %s: %v", ErrUnsafeFile, path, cur, err)
		}
		if err := checkUserStat(&st, acct, cur, true); err != nil {
			if !statMode(&st).IsDir() {
				return nil, linkOnTheWay(path, cur, err)
			}
			if unsafe == nil {
				unsafe = err
			}
		}
	}
	name := names[len(names)-1]
	probe, err := openPath(dir, name, false)
	if err != nil {
		return nil, unreachable(path, path, err)
	}
	st, err := fstat(probe)
	syscall.Close(probe)
	if err != nil {
		return nil, fmt.Errorf("%w: user policy %s: fstat: %v", ErrUnsafeFile, path, err)
	}
	if unsafe != nil {
		return nil, unsafe
	}
	// The probe lets us refuse a FIFO or device without opening it for reading.
	if err := checkUserStat(&st, acct, path, false); err != nil {
		return nil, err
	}
	// O_NONBLOCK: should a FIFO be swapped in meanwhile, opening it does not hang; fstat refuses it.
	fd, err := syscall.Openat(dir, name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("%w: user policy %s exists but the verify user (uid %d) cannot read it; fix: chmod o+r %s, or setfacl -m u:VERIFY_USER:r %s", ErrUnsafeFile, path, os.Geteuid(), path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: opening user policy %s: %v", ErrUnsafeFile, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	// The checks that count are on the descriptor we read from.
	opened, err := fstat(fd)
	if err != nil {
		return nil, fmt.Errorf("%w: user policy %s: fstat: %v", ErrUnsafeFile, path, err)
	}
	if err := checkUserStat(&opened, acct, path, false); err != nil {
		return nil, err
	}
	if opened.Dev != st.Dev || opened.Ino != st.Ino {
		return nil, fmt.Errorf("%w: user policy %s changed while it was being opened; try again", ErrUnsafeFile, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUserFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading user policy %s: %w", path, err)
	}
	if len(data) > maxUserFileSize {
		return nil, fmt.Errorf("%w: user policy %s is larger than 64 KiB", ErrUnsafeFile, path)
	}
	return data, nil
}

// openPath opens name relative to dir with O_PATH; follow says whether a final symbolic link is
// followed (without it, the link itself is opened and fstat reports it).
func openPath(dir int, name string, follow bool) (int, error) {
	flags := oPath | syscall.O_CLOEXEC
	if !follow {
		flags |= syscall.O_NOFOLLOW
	}
	for {
		fd, err := syscall.Openat(dir, name, flags, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

func fstat(fd int) (syscall.Stat_t, error) {
	var st syscall.Stat_t
	err := syscall.Fstat(fd, &st)
	return st, err
}

// unreachable classifies a failure to open at on the way to path: a missing name or a directory
// the verify user may not search means there is no file to read.
func unreachable(path, at string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %s does not exist", ErrNoUserFile, at)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: %s: the verify user (uid %d) may not search %s", ErrNoUserFile, path, os.Geteuid(), filepath.Dir(at))
	}
	return fmt.Errorf("%w: user policy %s: opening %s: %v", ErrUnsafeFile, path, at, err)
}

// linkOnTheWay reports a symbolic link (or other non-directory) at a directory's place. It is a
// problem only when following it would reach a file: a user whose ~/.config is a link into their
// dotfiles but who has no policy file must not get an error on every login.
func linkOnTheWay(path, at string, err error) error {
	if _, statErr := os.Stat(path); statErr != nil {
		return fmt.Errorf("%w: %s is not a directory", ErrNoUserFile, at)
	}
	return err
}

// checkUserStat checks one directory or the file on the way to a user's policy, like sshd's
// StrictModes: the right type, owned by the user or root, not writable by group or others.
func checkUserStat(st *syscall.Stat_t, acct UserAccount, path string, isDir bool) error {
	mode := statMode(st)
	switch {
	case mode&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: user policy: %s is a symbolic link, and verify follows none below the home; put the real directory or file there", ErrUnsafeFile, path)
	case isDir && !mode.IsDir():
		return fmt.Errorf("%w: user policy: %s is a %s; it must be a directory", ErrUnsafeFile, path, typeName(mode))
	case !isDir && !mode.IsRegular():
		return fmt.Errorf("%w: user policy %s is a %s; it must be a regular file", ErrUnsafeFile, path, typeName(mode))
	case int(st.Uid) != acct.UID && st.Uid != 0:
		return fmt.Errorf("%w: user policy: %s is owned by uid %d, not by %s or root; fix: chown %s %s", ErrUnsafeFile, path, st.Uid, acct.Name, acct.Name, path)
	case mode.Perm()&0o022 != 0:
		return fmt.Errorf("%w: user policy: %s is writable by group or others (mode %04o; an ACL granting write shows as group write); fix: chmod go-w %s", ErrUnsafeFile, path, mode.Perm(), path)
	case !isDir && st.Size > maxUserFileSize:
		return fmt.Errorf("%w: user policy %s is larger than 64 KiB", ErrUnsafeFile, path)
	}
	return nil
}

// statMode converts a raw stat mode into an fs.FileMode, for typeName and the permission bits.
func statMode(st *syscall.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	}
	return m
}
