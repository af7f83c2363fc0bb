package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

// TestServerInstall installs opkssh into this machine's real sshd configuration, logs in through
// an sshd running that configuration, has doctor find deliberately broken set-ups, and uninstalls.
func TestServerInstall(t *testing.T) {
	needSSHD(t)
	for _, p := range []string{"/etc/opkssh", "/usr/local/bin/opkssh", "/etc/ssh/sshd_config.d/60-opkssh.conf"} {
		if _, err := os.Stat(p); err == nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s already exists on the CI machine", p)
			}
			t.Skipf("%s exists: this machine already has opkssh installed; not touching it", p)
		}
	}
	before := sshdT(t)
	t.Cleanup(func() { opkssh(t, nil, "server", "uninstall", "--purge") })

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
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v mode %v, want %v", path, err, fi.Mode().Perm(), mode)
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
	e := &sshdEnv{srv: srv}
	e.mustLogIn(t, userAllowed, key)
	if log, _ := os.ReadFile("/var/log/opkssh/verify.log"); !strings.Contains(string(log), `"decision":"allow"`) {
		t.Fatalf("decision log in /var/log/opkssh: %s", log)
	}

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
