package serverinstall

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// Uninstall reverses Install as recorded in its state file: the drop-in goes (or its backup comes
// back), sshd is validated and reloaded, then the directories, binary and user that install
// created are removed. The policy directory is kept unless purge is set: it holds the
// administrator's policy.
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
	keep := func(p string) bool {
		return !purge && (p == o.ConfigDir || filepath.Dir(p) == o.ConfigDir)
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
	if st.CreatedUser {
		in.say("delete the user %s", st.VerifyUser)
		if !o.DryRun {
			if out, err := exec.Command("userdel", st.VerifyUser).CombinedOutput(); err != nil {
				return fmt.Errorf("userdel %s: %v: %s", st.VerifyUser, err, bytes.TrimSpace(out))
			}
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
