package serverinstall

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/sandbox"
)

// needRoot skips where install cannot chown, and fails under CI, which runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI runs as root; these tests chown files")
	}
	t.Skip("install chowns files: run as root")
}

// tempOptions points every path install touches into a fresh temporary directory, checks the
// configuration with true instead of sshd, and reloads nothing.
func tempOptions(t *testing.T, verifyUser string) Options {
	t.Helper()
	trueBin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	src := filepath.Join(root, "opkssh-build")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Options{
		Source: src, BinaryPath: filepath.Join(root, "usr/local/bin/opkssh"), ConfigDir: filepath.Join(root, "etc/opkssh"),
		CacheDir: filepath.Join(root, "var/cache/opkssh"), LogDir: filepath.Join(root, "var/log/opkssh"),
		SSHDConfig: filepath.Join(root, "etc/ssh/sshd_config"), DropIn: filepath.Join(root, "etc/ssh/sshd_config.d/60-opkssh.conf"),
		SSHD: trueBin, VerifyUser: verifyUser, ReloadCommand: []string{trueBin}, Out: &bytes.Buffer{},
	}
}

// mkdir makes path (and its parents) with exactly this owner and mode.
func mkdir(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	chown(t, path, uid, gid, mode)
}

func writeOwned(t *testing.T, path, content string, uid, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	chown(t, path, uid, gid, mode)
}

func chown(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func wantOwner(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	fuid, fgid, _ := fileowner.Of(fi)
	if fuid != uid || fgid != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s is %d:%d %04o, want %d:%d %04o", path, fuid, fgid, fi.Mode().Perm(), uid, gid, mode)
	}
}

func ids(t *testing.T, name string) (int, int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// Directories and files that existed before install get their owner and mode back on uninstall,
// however often install ran in between.
func TestUninstallRestoresTakenOverPaths(t *testing.T) {
	needRoot(t)
	o := tempOptions(t, "nobody")
	nobodyUID, nobodyGID := ids(t, "nobody")
	mkdir(t, o.CacheDir, 4242, 4243, 0o750)
	writeOwned(t, filepath.Join(o.CacheDir, "old-entry"), "kept\n", 4242, 4243, 0o640)
	mkdir(t, o.LogDir, 0, 0, 0o755)
	writeOwned(t, o.DropIn, "# the administrator's own\n", 4242, 4243, 0o600)

	for range 2 { // the second install is a no-op and must not record the changed state as original
		if err := Install(o); err != nil {
			t.Fatalf("install: %v\n%s", err, o.Out)
		}
	}
	wantOwner(t, o.CacheDir, nobodyUID, nobodyGID, 0o700)
	wantOwner(t, o.LogDir, nobodyUID, nobodyGID, 0o750)
	st, err := readState(o.statePath())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Originals[o.CacheDir]; got != (Original{UID: 4242, GID: 4243, Mode: 0o750}) {
		t.Errorf("recorded original of %s: %+v", o.CacheDir, got)
	}

	if err := Uninstall(o, false); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, o.Out)
	}
	wantOwner(t, o.CacheDir, 4242, 4243, 0o750)
	wantOwner(t, filepath.Join(o.CacheDir, "old-entry"), 4242, 4243, 0o640)
	wantOwner(t, o.LogDir, 0, 0, 0o755)
	wantOwner(t, o.DropIn, 4242, 4243, 0o600)
	if data, _ := os.ReadFile(o.DropIn); string(data) != "# the administrator's own\n" {
		t.Errorf("drop-in after uninstall: %q", data)
	}
	if _, err := os.Stat(o.BinaryPath); err == nil {
		t.Errorf("%s, which install created, remains", o.BinaryPath)
	}
	if _, err := os.Stat(o.statePath()); err == nil {
		t.Errorf("the state file remains")
	}
}

// When uninstall deletes the verify user it created, nothing left behind is owned by that uid or
// gid: the next account created would inherit it. Runs useradd, so it needs the sandbox.
func TestUninstallLeavesNothingToTheDeletedUser(t *testing.T) {
	needRoot(t)
	sandbox.Need(t, noSandbox)
	const name = "opkssh-unit-verify"
	if _, err := user.Lookup(name); err == nil {
		t.Fatalf("user %s exists already", name)
	}
	o := tempOptions(t, name)
	mkdir(t, o.CacheDir, 4242, 4242, 0o750)
	if err := Install(o); err != nil {
		t.Fatalf("install: %v\n%s", err, o.Out)
	}
	uid, gid := ids(t, name)
	wantOwner(t, o.CacheDir, uid, gid, 0o700)
	// What verify, running as the verify user, leaves in its directories.
	writeOwned(t, filepath.Join(o.CacheDir, "jwks", "entry.json"), "{}", uid, gid, 0o600)
	writeOwned(t, filepath.Join(o.LogDir, "verify.log"), "{}\n", uid, gid, 0o640)

	if err := Uninstall(o, false); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, o.Out)
	}
	if _, err := user.Lookup(name); err == nil {
		t.Fatalf("uninstall left the user %s", name)
	}
	wantOwner(t, o.CacheDir, 4242, 4242, 0o750)
	if _, err := os.Stat(o.LogDir); err == nil {
		t.Errorf("%s, which install created, remains", o.LogDir)
	}
	if _, err := os.Stat(filepath.Join(o.ConfigDir, "policies.yaml")); err != nil {
		t.Errorf("uninstall without --purge removed the policy: %v", err)
	}
	filepath.WalkDir(filepath.Dir(o.Source), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		fi, _ := d.Info()
		if fuid, fgid, _ := fileowner.Of(fi); fuid == uid || fgid == gid {
			t.Errorf("%s is owned by %d:%d, the deleted user's", path, fuid, fgid)
		}
		return nil
	})
}

// An install that fails partway names the failing step and has recorded the steps before it,
// so that uninstall removes what they created.
func TestFailedInstallNamesStepAndRecordsState(t *testing.T) {
	needRoot(t)
	o := tempOptions(t, "nobody")
	writeOwned(t, o.CacheDir, "a file where the cache directory goes\n", 0, 0, 0o644)
	err := Install(o)
	if err == nil || !strings.Contains(err.Error(), `install step "cache and log directories"`) || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("install over a file: %v", err)
	}
	st, serr := readState(o.statePath())
	if serr != nil {
		t.Fatal(serr)
	}
	if !slices.Contains(st.CreatedPaths, o.BinaryPath) || !slices.Contains(st.CreatedPaths, o.ConfigDir) {
		t.Fatalf("the state file does not record the earlier steps: %+v", st.CreatedPaths)
	}
	if err := Uninstall(o, true); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, o.Out)
	}
	for _, p := range []string{o.BinaryPath, o.ConfigDir} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s, which the failed install created, remains", p)
		}
	}
}
