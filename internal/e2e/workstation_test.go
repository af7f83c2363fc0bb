package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// TestLoginOPClockAhead logs in against an OP whose clock runs five minutes ahead of this
// machine's: the certificate must be valid now, as ssh-keygen (OpenSSH's own reading) shows,
// not from the token's iat on.
func TestLoginOPClockAhead(t *testing.T) {
	op := startOP(t)
	op.SetNow(func() time.Time { return time.Now().Add(5 * time.Minute) })
	key := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id"))
	out, err := exec.Command("ssh-keygen", "-L", "-f", key+"-cert.pub").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Valid: from (\S+) to (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ssh-keygen -L shows no validity:\n%s", out)
	}
	const layout = "2006-01-02T15:04:05"
	from, err1 := time.ParseInLocation(layout, string(m[1]), time.Local)
	to, err2 := time.ParseInLocation(layout, string(m[2]), time.Local)
	if err1 != nil || err2 != nil {
		t.Fatalf("ssh-keygen validity %q: %v %v", m[0], err1, err2)
	}
	now := time.Now()
	if now.Before(from) || !now.Before(to) {
		t.Fatalf("certificate made now is not valid now (%s): %s", now.Format(layout), m[0])
	}
	if d := to.Sub(now); d > 24*time.Hour || d < 23*time.Hour {
		t.Fatalf("certificate lasts %s from now, want just under the 24h lifetime: %s", d, m[0])
	}
}

// TestRestrictedCertificate logs in through the real sshd with certificates their holder
// restricted (login --force-command, --source-address): verify allows them, and sshd enforces
// the restrictions itself.
func TestRestrictedCertificate(t *testing.T) {
	op := startOP(t)
	e := startSSHD(t)
	rule := "rules:\n  - principals: [" + userAllowed + "]\n    provider: test\n    identities:\n      - email: alice@example.com\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), rule)); err != nil {
		t.Fatal(err)
	}

	t.Run("force-command runs instead of the requested command", func(t *testing.T) {
		key := loginWith(t, op, "alice@example.com", filepath.Join(e.keys, "forced"),
			"--force-command", "echo forced for $(id -un): $SSH_ORIGINAL_COMMAND", "--source-address", "127.0.0.0/8,::1")
		out, errOut, err := e.ssh(t, userAllowed, key, "touch", "/tmp/opkssh-e2e-not-forced")
		if err != nil || out != "forced for "+userAllowed+": touch /tmp/opkssh-e2e-not-forced\n" {
			t.Fatalf("err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		if _, err := os.Stat("/tmp/opkssh-e2e-not-forced"); err == nil {
			os.Remove("/tmp/opkssh-e2e-not-forced")
			t.Fatal("the requested command ran")
		}
	})

	t.Run("source-address excluding the client is refused by sshd", func(t *testing.T) {
		key := loginWith(t, op, "alice@example.com", filepath.Join(e.keys, "elsewhere"), "--source-address", "192.0.2.0/24")
		// verify allowed the certificate; sshd refused it for its source address.
		e.mustBeRefusedBySSHD(t, userAllowed, key).mustAll(t, "allow", "allowed")
		if !strings.Contains(e.srv.Log(), "not from a permitted source address") {
			t.Fatalf("sshd log does not name the source address:\n%s", e.srv.Log())
		}
	})
}

// loginWith runs `opkssh login` through the scripted browser as user with extra flags.
func loginWith(t *testing.T, op *testop.Server, user, keyPath string, extra ...string) string {
	t.Helper()
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"login", "--issuer", op.Issuer(), "--client-id", "opkssh", "--key-file", keyPath,
		"--redirect-uri", redirect, "--timeout", "30s"}, extra...)
	r := opkssh(t, []string{"HOME=" + t.TempDir(), "FAKEBROWSER_USER=" + user}, args...)
	if r.code != 0 || !strings.Contains(r.stdout, "Logged in as "+user) {
		t.Fatalf("login %v failed (exit %d):\nstdout: %s\nstderr: %s", extra, r.code, r.stdout, r.stderr)
	}
	return keyPath
}

// TestDeviceLoginNonceDropped runs "opkssh login --device" against an OP that leaves the nonce
// out of the device grant's ID token, as Dex and Zitadel do: login names that behaviour and the
// browser logins that work instead, and writes nothing; the browser login then works.
func TestDeviceLoginNonceDropped(t *testing.T) {
	op, err := testop.Start(testop.Options{AutoApprove: "alice", Quirks: testop.Quirks{DeviceDropsNonce: true},
		Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	key := filepath.Join(t.TempDir(), "id")
	r := opkssh(t, []string{"HOME=" + t.TempDir()}, "login", "--device", "--issuer", op.Issuer(), "--client-id", "opkssh",
		"--key-file", key, "--timeout", "20s")
	if r.code == 0 || r.stdout != "" {
		t.Fatalf("device login without a nonce: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"opkssh: the OP left the nonce out of the device login's ID token (Dex and Zitadel do this",
		`"opkssh login" on a machine with a browser`,
		`"opkssh login --no-browser", open the OP's URL it prints`,
		"paste back the address that browser ends on",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(key); err == nil {
		t.Error("the failed login wrote a key")
	}
	// The browser login it points to works with the same OP.
	loginWith(t, op, "alice@example.com", key)
}
