package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// hidden exists on nearly every Linux machine; the sandbox hides it from these tests.
const hidden = "/etc/os-release"

var unavailable error

// The tests of this package run in the sandbox they test; the parent fails the run if the
// machine changed.
func TestMain(m *testing.M) {
	if dir := os.Getenv(envNested); dir != "" {
		os.Exit(nested(dir))
	}
	o := Defaults()
	o.Hide = []string{hidden}
	os.Exit(Main(o, func(err error) int {
		unavailable = err
		return m.Run()
	}))
}

// outside is how the machine's own view of path looks from inside.
func outside(path string) string {
	return filepath.Join(hostRoot, path)
}

func TestInsideAPrivateNamespace(t *testing.T) {
	Need(t, unavailable)
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if self == parentMountNS {
		t.Fatalf("the tests share the parent's mount namespace %s", self)
	}
	if err := enter(Defaults(), t.TempDir(), self); err == nil || !strings.Contains(err.Error(), "refusing to mount") {
		t.Fatalf("enter in the namespace it was told it came from: %v", err)
	}
}

// The tests run in their own pid namespace under the sandbox's init: the machine's processes
// (whose uids userdel would find busy) are not visible.
func TestOwnPIDNamespace(t *testing.T) {
	Need(t, unavailable)
	if os.Getppid() != 1 {
		t.Errorf("the tests' parent is pid %d, want the sandbox's init, pid 1", os.Getppid())
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, e.Name())
		}
	}
	if len(pids) > 5 {
		t.Errorf("/proc shows %d processes (%v): the machine's are visible", len(pids), pids)
	}
}

// Everything the server tests do to a machine stays inside: files in /etc, /usr/local/bin,
// /var/lib, /var/cache, /var/log and /run, chowns, and an account made with useradd.
func TestWritesStayInside(t *testing.T) {
	Need(t, unavailable)
	paths := []string{"/etc/opkssh-sandbox-test", "/usr/local/bin/opkssh-sandbox-test", "/var/lib/opkssh-sandbox-test",
		"/var/cache/opkssh-sandbox-test", "/var/log/opkssh-sandbox-test", "/run/opkssh-sandbox-test"}
	for _, p := range paths {
		if _, err := os.Lstat(outside(p)); err == nil {
			t.Fatalf("%s exists on this machine before the test", p)
		}
		if err := os.WriteFile(p, []byte("inside\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
	}
	const account = "opkssh-sandbox-t"
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", account).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	if _, err := user.Lookup(account); err != nil {
		t.Fatalf("the account is not there inside: %v", err)
	}
	for _, p := range paths {
		if data, err := os.ReadFile(p); err != nil || string(data) != "inside\n" {
			t.Errorf("inside, %s: %q %v", p, data, err)
		}
		if _, err := os.Lstat(outside(p)); err == nil {
			t.Errorf("%s leaked to the machine", p)
		}
	}
	passwd, err := os.ReadFile(outside("/etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(passwd), account+":") {
		t.Errorf("useradd inside changed the machine's /etc/passwd")
	}
	if mine, _ := os.ReadFile("/etc/passwd"); !strings.Contains(string(mine), "\n"+account+":") {
		t.Errorf("the sandbox's /etc/passwd lacks %s", account)
	}
}

func TestHide(t *testing.T) {
	Need(t, unavailable)
	if _, err := os.Lstat(outside(hidden)); err != nil {
		t.Skipf("%s does not exist on this machine: nothing to hide", hidden)
	}
	if _, err := os.Lstat(hidden); err == nil {
		t.Fatalf("%s is still visible inside", hidden)
	}
	if err := hide(Options{Dirs: []string{"/etc"}, Hide: []string{"/proc/self/environ"}}); err == nil {
		t.Fatal("hide accepted a path outside the overlaid directories")
	}
}

// The module stays the machine's: go test's fuzz corpora and -coverprofile land there.
func TestModuleKept(t *testing.T) {
	Need(t, unavailable)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var inside, out os.FileInfo
	if inside, err = os.Stat(wd); err != nil {
		t.Fatal(err)
	}
	if out, err = os.Stat(outside(wd)); err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(inside, out) {
		t.Errorf("%s inside is not the machine's", wd)
	}
}

// envNested makes the test binary run nested instead of its tests.
const envNested = "OPKSSH_SANDBOX_TEST_NESTED"

// TestMountsBelowAndKeptPaths builds a sandbox over a directory that has a mount below it and a
// path to keep, in a nested namespace, and checks from both sides that the mount is still there
// (read-only), the kept path is shared, and everything else stays inside.
func TestMountsBelowAndKeptPaths(t *testing.T) {
	Need(t, unavailable)
	top := t.TempDir()
	sub := filepath.Join(top, "sub")
	for _, d := range []string{sub, filepath.Join(top, "kept")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// This namespace is the sandbox's own: the tmpfs is invisible to the machine.
	if err := unix.Mount("sub", sub, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "file"), []byte("on the mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), envNested+"="+top)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nested sandbox: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(top, "written")); err == nil {
		t.Error("a write in the nested sandbox reached its parent")
	}
	if data, err := os.ReadFile(filepath.Join(top, "kept", "file")); err != nil || string(data) != "kept" {
		t.Errorf("a write to the kept path did not reach the parent: %q %v", data, err)
	}
}

// nested runs in TestMountsBelowAndKeptPaths's child: a sandbox over top, with top/kept kept.
func nested(top string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 1 }
	parentNS, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(os.Getppid()), "ns", "mnt"))
	if err != nil {
		return fail(err)
	}
	layers, err := os.MkdirTemp("", "nested-")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(layers)
	o := Options{Dirs: []string{top}, Keep: []string{filepath.Join(top, "kept")}}
	if err := enter(o, layers, parentNS); err != nil {
		return fail(err)
	}
	if data, err := os.ReadFile(filepath.Join(top, "sub", "file")); err != nil || string(data) != "on the mount" {
		return fail(fmt.Errorf("the mount below the overlay is gone: %q %v", data, err))
	}
	if err := os.WriteFile(filepath.Join(top, "sub", "new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		return fail(fmt.Errorf("writing on the bound-back mount: %v, want read-only", err))
	}
	if err := os.WriteFile(filepath.Join(top, "written"), nil, 0o644); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(top, "kept", "file"), []byte("kept"), 0o644); err != nil {
		return fail(err)
	}
	return 0
}
