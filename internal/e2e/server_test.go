package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
)

// sshdT is sshd's effective configuration, the thing uninstall must leave as it found it.
func sshdT(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(sshdtest.SSHD, "-T", "-f", "/etc/ssh/sshd_config", "-C", "user=root,host=localhost,addr=127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("sshd -T: %v: %s", err, out)
	}
	return string(out)
}

// startUninstalled checks that the sandbox's view has no opkssh install (TestMain hides the
// machine's) and leaves it so again when t ends, whatever t did.
func startUninstalled(t *testing.T) {
	t.Helper()
	for _, p := range installed {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists in the sandbox's view, which should start without opkssh", p)
		}
	}
	t.Cleanup(func() {
		opkssh(t, nil, "server", "uninstall", "--purge")
		for _, p := range installed {
			os.RemoveAll(p)
		}
	})
}

// TestServerInstall installs opkssh into the sshd configuration of the sandbox's view of this
// machine (/etc/ssh as the machine has it; the changes stay in the sandbox), logs in through an
// sshd running that configuration, has doctor find deliberately broken set-ups, and uninstalls.
func TestServerInstall(t *testing.T) {
	needSSHD(t)
	startUninstalled(t)
	before := sshdT(t)

	dry := opkssh(t, nil, "server", "install", "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.stdout, "would write the sshd drop-in") {
		t.Fatalf("dry run: %+v", dry)
	}
	if _, err := os.Stat("/etc/opkssh"); err == nil {
		t.Fatal("--dry-run changed the system")
	}

	first := opkssh(t, nil, "server", "install")
	if first.code != 0 {
		t.Fatalf("install: %s\n%s", first.stdout, first.stderr)
	}
	again := opkssh(t, nil, "server", "install")
	if again.code != 0 || strings.Contains(again.stdout, "would") || strings.Contains(again.stdout, "create ") || strings.Contains(again.stdout, "write ") {
		t.Fatalf("second install was not a no-op:\n%s%s", again.stdout, again.stderr)
	}
	for path, mode := range map[string]os.FileMode{"/usr/local/bin/opkssh": 0o755, "/etc/opkssh": 0o750, "/etc/opkssh/policies.yaml": 0o640, "/var/cache/opkssh": 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("after install: %v", err)
		}
		if fi.Mode().Perm() != mode {
			t.Fatalf("%s has mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if out, err := exec.Command(sshdtest.SSHD, "-t").CombinedOutput(); err != nil {
		t.Fatalf("sshd -t after install: %v %s", err, out)
	}
	if got := sshdT(t); !strings.Contains(got, "authorizedkeyscommand /usr/local/bin/opkssh verify %u %k %t") || !strings.Contains(got, "authorizedkeyscommanduser opkssh") {
		t.Fatalf("sshd -T after install lacks our settings:\n%s", got)
	}

	// A real login through an sshd running the system configuration.
	op := startOP(t)
	remove, err := sshdtest.EnsureUser(userAllowed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remove() })
	pol := policy(op.Issuer(), "rules:\n  - principals: ["+userAllowed+"]\n    provider: test\n    identities:\n      - email: alice@example.com\n")
	if err := os.WriteFile("/etc/opkssh/policies.yaml", []byte(pol), 0o640); err != nil {
		t.Fatal(err)
	}
	srv, err := sshdtest.Start(sshdtest.Options{WorkDir: t.TempDir(), SystemConfig: "/etc/ssh/sshd_config"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	key := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id"))
	// The installed verify logs its decision to /var/log/opkssh.
	e := &sshdEnv{srv: srv, log: "/var/log/opkssh/verify.log"}
	e.mustLogIn(t, userAllowed, key)

	if r := opkssh(t, nil, "doctor"); r.code != 0 {
		t.Fatalf("doctor on a good set-up failed:\n%s%s", r.stdout, r.stderr)
	}
	broken := []struct {
		name, want string
		breakIt    func() func()
	}{
		{"policy writable by others", "writable by group or others", func() func() {
			os.Chmod("/etc/opkssh/policies.yaml", 0o666)
			return func() { os.Chmod("/etc/opkssh/policies.yaml", 0o640) }
		}},
		{"policy missing", "does not exist", func() func() {
			os.Rename("/etc/opkssh/policies.yaml", "/etc/opkssh/policies.yaml.away")
			return func() { os.Rename("/etc/opkssh/policies.yaml.away", "/etc/opkssh/policies.yaml") }
		}},
		{"conflicting AuthorizedKeysCommand", "conflicting AuthorizedKeysCommand", func() func() {
			os.WriteFile("/etc/ssh/sshd_config.d/10-conflict.conf", []byte("AuthorizedKeysCommand /usr/bin/true %u\nAuthorizedKeysCommandUser nobody\n"), 0o644)
			return func() { os.Remove("/etc/ssh/sshd_config.d/10-conflict.conf") }
		}},
	}
	for _, b := range broken {
		t.Run("doctor finds "+b.name, func(t *testing.T) {
			undo := b.breakIt()
			defer undo()
			r := opkssh(t, nil, "doctor")
			if r.code != 1 || !strings.Contains(r.stdout, "[FAIL]") || !strings.Contains(r.stdout, b.want) {
				t.Fatalf("doctor: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}

	un := opkssh(t, nil, "server", "uninstall", "--purge")
	if un.code != 0 {
		t.Fatalf("uninstall: %s%s", un.stdout, un.stderr)
	}
	if after := sshdT(t); after != before {
		t.Fatalf("sshd -T differs after uninstall:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, p := range []string{"/usr/local/bin/opkssh", "/etc/ssh/sshd_config.d/60-opkssh.conf", "/var/cache/opkssh", "/etc/opkssh"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s remains after uninstall --purge", p)
		}
	}
}

// TestServerUninstallGivesBackTakenOverDirs: install takes over a cache and a log directory that
// existed before, verify (as the verify user install created) writes its cache and log into them,
// and uninstall gives both directories their owner and mode back and leaves no file owned by the
// user or group it deleted.
func TestServerUninstallGivesBackTakenOverDirs(t *testing.T) {
	needSSHD(t)
	startUninstalled(t)
	if _, err := user.Lookup("opkssh"); err == nil {
		t.Fatal("the user opkssh exists; install must create it for this test")
	}
	const cache, logDir = "/var/cache/opkssh", "/var/log/opkssh"
	for _, d := range []struct {
		path string
		uid  int
		mode os.FileMode
	}{{cache, 4242, 0o750}, {logDir, 0, 0o755}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, d.uid, d.uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(cache, "kept")
	if err := os.WriteFile(keep, []byte("the administrator's\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(keep, 4242, 4242); err != nil {
		t.Fatal(err)
	}

	if r := opkssh(t, nil, "server", "install"); r.code != 0 {
		t.Fatalf("install: %s\n%s", r.stdout, r.stderr)
	}
	u, err := user.Lookup("opkssh")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	wantOwner(t, cache, uid, gid, 0o700)

	// verify as sshd runs it: as the verify user, with the installed binary and default paths.
	op := startOP(t)
	pol := policy(op.Issuer(), "rules:\n  - principals: ["+userAllowed+"]\n    provider: test\n    identities:\n      - email: alice@example.com\n")
	if err := os.WriteFile("/etc/opkssh/policies.yaml", []byte(pol), 0o640); err != nil {
		t.Fatal(err)
	}
	b64, typ := certArgs(t, login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id")))
	verify := exec.Command("/usr/local/bin/opkssh", "verify", userAllowed, b64, typ)
	verify.Env = []string{"PATH=/usr/bin:/bin"}
	verify.Dir = "/"
	verify.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := verify.Output(); err != nil || !strings.HasPrefix(string(out), "cert-authority,") {
		t.Fatalf("verify as opkssh: %v: %q", err, out)
	}
	if n := countOwned(t, []string{cache, logDir}, uid, gid); n < 2 {
		t.Fatalf("verify left %d files owned by opkssh in %s and %s; want its cache and its log", n, cache, logDir)
	}

	if r := opkssh(t, nil, "server", "uninstall"); r.code != 0 {
		t.Fatalf("uninstall: %s%s", r.stdout, r.stderr)
	}
	if _, err := user.Lookup("opkssh"); err == nil {
		t.Fatal("uninstall left the user opkssh it created")
	}
	wantOwner(t, cache, 4242, 4242, 0o750)
	wantOwner(t, keep, 4242, 4242, 0o640)
	wantOwner(t, logDir, 0, 0, 0o755)
	if n := countOwned(t, []string{cache, logDir, "/etc/opkssh"}, uid, gid); n != 0 {
		t.Fatalf("%d files are still owned by the deleted user %d or group %d", n, uid, gid)
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

// countOwned counts the files below roots owned by uid or by group gid, naming each in the log.
func countOwned(t *testing.T, roots []string, uid, gid int) int {
	t.Helper()
	n := 0
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if fuid, fgid, _ := fileowner.Of(fi); fuid == uid || fgid == gid {
				t.Logf("%s: %d:%d", path, fuid, fgid)
				n++
			}
			return nil
		})
	}
	return n
}
