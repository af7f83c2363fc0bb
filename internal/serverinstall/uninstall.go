package serverinstall

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opkssh-team/opkssh/internal/fileowner"
)

// Uninstall reverses Install as recorded in its state file: the drop-in goes (or its backup comes
// back), sshd is validated and reloaded, then the directories, binary and user that install
// created are removed and the paths it took over get their owner and mode back. The policy
// directory is kept unless purge is set: it holds the administrator's policy.
func Uninstall(o Options, purge bool) error {
	o.fill()
	if err := o.check(); err != nil {
		return err
	}
	if !o.DryRun && os.Geteuid() != 0 {
		return errors.New("server uninstall must run as root (try --dry-run to see what it would do)")
	}
	st, err := readState(o.statePath())
	if err != nil {
		return err
	}
	if st.InstalledAt.IsZero() {
		return fmt.Errorf("no install state in %s: nothing recorded to uninstall", o.statePath())
	}
	in := &installer{o: o, st: st}
	if st.DropIn != "" {
		o.DropIn = st.DropIn
	}
	// sshd first, so logins never meet a command that is gone.
	if err := in.restore(o.DropIn); err != nil {
		return err
	}
	if !o.DryRun {
		cfg := st.SSHDConfigFile
		if cfg == "" {
			cfg = o.SSHDConfig
		}
		if out, err := exec.Command(o.SSHD, "-t", "-f", cfg).CombinedOutput(); err != nil {
			return fmt.Errorf("sshd -t fails after removing the drop-in (was it broken before?): %v: %s", err, bytes.TrimSpace(out))
		}
	}
	if err := reloadSSHD(o, in.say); err != nil {
		return err
	}
	// Without purge the policy directory stays, and so do the directories install made above it.
	keep := func(p string) bool {
		return !purge && (p == o.ConfigDir || filepath.Dir(p) == o.ConfigDir || strings.HasPrefix(o.ConfigDir, p+"/"))
	}
	for _, p := range slices.Backward(st.CreatedPaths) {
		if p == o.DropIn || keep(p) {
			continue
		}
		if err := in.restore(p); err != nil {
			return err
		}
	}
	for path := range st.Backups {
		if err := in.restore(path); err != nil {
			return err
		}
	}
	if err := in.restoreOriginals(); err != nil {
		return err
	}
	if st.CreatedUser {
		if err := in.deleteUser(purge); err != nil {
			return err
		}
	}
	if purge {
		in.say("remove %s", o.ConfigDir)
		if !o.DryRun {
			return os.RemoveAll(o.ConfigDir)
		}
		return nil
	}
	fmt.Fprintf(o.Out, "  kept %s (your policy); remove it with --purge\n", o.ConfigDir)
	if !o.DryRun {
		return os.Remove(o.statePath())
	}
	return nil
}

// restore puts back path's backup, or removes path if install created it.
func (in *installer) restore(path string) error {
	if b, ok := in.st.Backups[path]; ok {
		in.say("restore %s from %s", path, b)
		if in.o.DryRun {
			return nil
		}
		delete(in.st.Backups, path)
		return os.Rename(b, path)
	}
	if !in.created(path) {
		return nil
	}
	in.say("remove %s", path)
	if in.o.DryRun {
		return nil
	}
	err := os.RemoveAll(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// restoreOriginals gives the paths that existed before install their owner and mode back.
func (in *installer) restoreOriginals() error {
	for _, path := range slices.Sorted(maps.Keys(in.st.Originals)) {
		orig := in.st.Originals[path]
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		in.say("give %s back its owner and mode (%d:%d %04o)", path, orig.UID, orig.GID, orig.Mode)
		if in.o.DryRun {
			continue
		}
		if err := os.Chown(path, orig.UID, orig.GID); err != nil {
			return err
		}
		if err := os.Chmod(path, orig.Mode); err != nil {
			return err
		}
	}
	return nil
}

// deleteUser deletes the verify user install created. Files that stay behind in directories
// uninstall keeps (a cache or log directory that existed before, the policy directory without
// --purge) and are owned by the deleted user or group are given to root: a uid or gid left on a
// file would belong to whichever account is created next with that number.
func (in *installer) deleteUser(purge bool) error {
	name := in.st.VerifyUser
	in.say("delete the user %s", name)
	if in.o.DryRun {
		return nil
	}
	u, lookupErr := user.Lookup(name)
	if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
		return fmt.Errorf("userdel %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	if lookupErr != nil {
		return nil // already gone before install's record was read: its ids are unknown
	}
	uid, gid := -1, -1
	if _, err := user.LookupId(u.Uid); err != nil {
		uid, _ = strconv.Atoi(u.Uid)
	}
	if _, err := user.LookupGroupId(u.Gid); err != nil {
		gid, _ = strconv.Atoi(u.Gid)
	}
	if uid < 0 && gid < 0 {
		return nil
	}
	var kept []string
	for p := range in.st.Originals {
		kept = append(kept, p)
	}
	for _, p := range []string{in.st.CacheDir, in.st.LogDir} {
		if p != "" && !in.created(p) {
			kept = append(kept, p)
		}
	}
	if !purge {
		kept = append(kept, in.o.ConfigDir)
	}
	for _, root := range slices.Compact(slices.Sorted(slices.Values(kept))) {
		if err := disown(root, uid, gid, in.o.Out); err != nil {
			return err
		}
	}
	return nil
}

// disown gives every file below root owned by uid, or by group gid, to root (-1: not deleted).
func disown(root string, uid, gid int, out io.Writer) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			var fi fs.FileInfo
			if fi, err = d.Info(); err == nil {
				return disownOne(path, fi, uid, gid, out)
			}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone meanwhile, or a kept directory that is not there
		}
		return err
	})
}

func disownOne(path string, fi fs.FileInfo, uid, gid int, out io.Writer) error {
	fuid, fgid, ok := fileowner.Of(fi)
	if !ok || (fuid != uid && fgid != gid) {
		return nil
	}
	newUID, newGID := fuid, fgid
	if fuid == uid {
		newUID = 0
	}
	if fgid == gid {
		newGID = 0
	}
	fmt.Fprintf(out, "  give %s to root (its owner was the deleted verify user)\n", path)
	return os.Lchown(path, newUID, newGID)
}
