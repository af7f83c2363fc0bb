package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshagent/agenttest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

// TestRefreshThroughMatchExec is the transparent refresh as a user meets it: yesterday's
// certificate has expired, ~/.ssh/config holds the block "opkssh ssh-config --install" wrote, and
// plain ssh logs in, because ssh ran "opkssh login --if-needed --quiet test" (Match exec) before
// connecting. No person takes part: the test OP approves alice at once and the scripted browser
// (xdg-open on PATH) follows the redirects.
func TestRefreshThroughMatchExec(t *testing.T) {
	op := startOP(t)
	op.SetAutoApprove("alice@example.com")
	e := startSSHD(t)
	rule := "rules:\n  - principals: [" + userAllowed + "]\n    provider: test\n    identities:\n      - email: alice@example.com\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), rule)); err != nil {
		t.Fatal(err)
	}

	t.Run("key files", func(t *testing.T) {
		u := newRefreshUser(t, op)
		// Without the block, ssh offers the expired certificate and sshd refuses it.
		e.mustBeRefused(t, userAllowed, u.key, "cert_expired")
		u.installBlock(t, op, "--provider", "test")
		before, _ := os.ReadFile(sshcert.CertPath(u.key))

		tokens := op.Requests("/token")
		out, errOut, err := u.ssh(t, e, "-i", u.key, "-o", "CertificateFile="+sshcert.CertPath(u.key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none")
		if err != nil || out != userAllowed+"\n" {
			t.Fatalf("ssh through the Match exec block: err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		if got := op.Requests("/token"); got != tokens+1 {
			t.Fatalf("the OP's token endpoint was called %d times, want 1", got-tokens)
		}
		after, _ := os.ReadFile(sshcert.CertPath(u.key))
		if bytes.Equal(before, after) {
			t.Fatal("the certificate file was not renewed")
		}
		if r := opkssh(t, u.env, "status"); r.code != 0 || !strings.HasPrefix(r.stdout, "Valid: alice@example.com") {
			t.Fatalf("status after the refresh: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}

		// With a valid certificate the block does nothing: no new login, same file.
		out, errOut, err = u.ssh(t, e, "-i", u.key, "-o", "CertificateFile="+sshcert.CertPath(u.key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none")
		if err != nil || out != userAllowed+"\n" || errOut != "" {
			t.Fatalf("second ssh: err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		if got := op.Requests("/token"); got != tokens+1 {
			t.Fatal("the second ssh logged in again although the certificate was valid")
		}
		if again, _ := os.ReadFile(sshcert.CertPath(u.key)); !bytes.Equal(after, again) {
			t.Fatal("the second ssh replaced a valid certificate")
		}
	})

	t.Run("ssh-agent", func(t *testing.T) {
		u := newRefreshUser(t, op)
		sock := startAgent(t)
		u.env = append(u.env, "SSH_AUTH_SOCK="+sock)
		u.installBlock(t, op, "--provider", "test", "--agent")
		// ssh may use only the agent: the identity file named does not exist, so the expired
		// certificate on disk is never offered. The login must put the new one into the agent.
		out, errOut, err := u.ssh(t, e, "-o", "IdentityFile="+filepath.Join(u.home, "no-such-key"), "-o", "IdentityAgent="+sock)
		if err != nil || out != userAllowed+"\n" {
			t.Fatalf("ssh with the agent through the Match exec block: err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		ids := agentIdentities(t, sock)
		if len(ids) != 1 || ids[0].Comment != "opkssh:alice@example.com" {
			t.Fatalf("agent holds %v, want one opkssh:alice@example.com", ids)
		}
		cert, err := sshcert.ReadCertFile(sshcert.CertPath(u.key))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ids[0].Blob, cert.Marshal()) {
			t.Fatal("the agent's certificate is not the renewed certificate file")
		}
	})
}

// refreshUser is a workstation account: its own HOME with an expired opkssh certificate in
// ~/.ssh/id_ecdsa-cert.pub, and the environment ssh passes on to Match exec.
type refreshUser struct {
	home, key string
	env       []string
	path      string // PATH for ssh and so for the Match exec; "" means with the scripted browser
}

func newRefreshUser(t *testing.T, op *testop.Server) *refreshUser {
	t.Helper()
	home := t.TempDir()
	u := &refreshUser{home: home, key: filepath.Join(home, ".ssh", "id_ecdsa"),
		env: []string{"HOME=" + home, "SHELL=/bin/sh", "FAKEBROWSER_USER=alice@example.com"}}
	signer, alg := logintest.NewKey("ecdsa")
	iat := time.Now().Add(-25 * time.Hour)
	compact, err := logintest.Forge(op, signer, alg, logintest.Claims(op, "alice", "alice@example.com", iat))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := logintest.Wrap(signer, compact, iat.Add(-time.Minute), iat.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := sshcert.WriteKeyPair(u.key, signer, cred.Cert, "opkssh:alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if r := opkssh(t, u.env, "status"); r.code != 3 || !strings.HasPrefix(r.stdout, "Expired: alice@example.com") {
		t.Fatalf("status of yesterday's certificate: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	return u
}

// installBlock names the test OP "test" in the user's configuration and runs
// "opkssh ssh-config --install" with args.
func (u *refreshUser) installBlock(t *testing.T, op *testop.Server, args ...string) {
	t.Helper()
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	if r := opkssh(t, u.env, "provider", "add", "test", "--issuer", op.Issuer(), "--client-id", "opkssh", "--redirect-uri", redirect); r.code != 0 {
		t.Fatalf("provider add: %s%s", r.stdout, r.stderr)
	}
	r := opkssh(t, u.env, append([]string{"ssh-config", "--install"}, args...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Added the opkssh block to ") {
		t.Fatalf("ssh-config --install: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	config, _ := os.ReadFile(filepath.Join(u.home, ".ssh", "config"))
	if !strings.Contains(string(config), `exec "`+opksshBin+" login --if-needed --quiet") {
		t.Fatalf("the block does not run %s:\n%s", opksshBin, config)
	}
}

// ssh runs "id -un" on the test sshd as userAllowed with the user's ~/.ssh/config and the given
// identity options. ssh runs as root and so reads root's ~ for "~/.ssh": every path is explicit.
func (u *refreshUser) ssh(t *testing.T, e *sshdEnv, identity ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-F", filepath.Join(u.home, ".ssh", "config")}, identity...)
	args = append(args, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+e.srv.KnownHosts, "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
		"-p", strconv.Itoa(e.srv.Port), "-l", userAllowed, "127.0.0.1", "id", "-un")
	cmd := exec.CommandContext(ctx, "ssh", args...)
	path := u.path
	if path == "" {
		path = browserDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	cmd.Env = append([]string{"PATH=" + path}, u.env...)
	// On a timeout, stop the login that ssh started too, not only ssh.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// startAgent runs ssh-agent for the test and stops it by its PID afterwards.
func startAgent(t *testing.T) string {
	t.Helper()
	sock, stop, err := agenttest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return sock
}

func agentIdentities(t *testing.T, sock string) []*agent.Key {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := agent.NewClient(c).List()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := ssh.ParsePublicKey(k.Blob); err != nil {
			t.Fatalf("agent identity %s: %v", k.Comment, err)
		}
	}
	return keys
}

// TestSilentRefreshThroughMatchExec is the refresh token at work: yesterday's login has expired,
// and plain ssh logs in again without any browser, because the Match exec block's "opkssh login
// --if-needed" renews the certificate with the refresh token stored beside the key. Nothing could
// log in interactively: ssh's PATH is an empty directory (no xdg-open, scripted or real) and the
// test OP shows its login form, so any fallback to the browser would fail, after the 5s the
// wrapper gives it. Then the OP revokes the refresh tokens: the renewal fails, the stale token
// file is removed, and with no browser the login is refused.
func TestSilentRefreshThroughMatchExec(t *testing.T) {
	// Tokens live 48h so that a login made with the OP's clock 25h behind still verifies at the
	// client; servers expire logins 24h after iat, so that login has expired for them.
	op, err := testop.Start(testop.Options{
		Users:         []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}},
		TokenLifetime: 48 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	e := startSSHD(t)
	rule := "rules:\n  - principals: [" + userAllowed + "]\n    provider: test\n    identities:\n      - email: alice@example.com\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), rule)); err != nil {
		t.Fatal(err)
	}
	// The block runs opkssh through this wrapper, which only shortens the wait for a browser.
	wrapper := filepath.Join(t.TempDir(), "opkssh")
	writeFile(t, wrapper, "#!/bin/sh\nexec "+opksshBin+" \"$@\" --timeout 5s\n")
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	noBrowser := t.TempDir()

	sshArgs := func(u *refreshUser) []string {
		return []string{"-i", u.key, "-o", "CertificateFile=" + sshcert.CertPath(u.key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"}
	}
	read := func(path string) []byte {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	t.Run("renewed without a browser", func(t *testing.T) {
		u := newLoggedInYesterday(t, op, wrapper, noBrowser)
		key, cert := read(u.key), read(sshcert.CertPath(u.key))
		token := read(provider.RefreshTokenPath(u.key))
		refreshes, codes, authorizes := op.GrantRequests(testop.GrantTypeRefreshToken), op.GrantRequests("authorization_code"), op.Requests("/authorize")

		from := e.logOffset(t)
		out, errOut, err := u.ssh(t, e, sshArgs(u)...)
		if err != nil || out != userAllowed+"\n" || errOut != "" {
			t.Fatalf("ssh through the Match exec block: err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		if got := op.GrantRequests(testop.GrantTypeRefreshToken) - refreshes; got != 1 {
			t.Fatalf("%d refresh requests at the OP, want 1", got)
		}
		if op.GrantRequests("authorization_code") != codes || op.Requests("/authorize") != authorizes {
			t.Fatal("an interactive login reached the OP")
		}
		if !bytes.Equal(read(u.key), key) {
			t.Fatal("the private key changed")
		}
		if bytes.Equal(read(sshcert.CertPath(u.key)), cert) {
			t.Fatal("the certificate was not renewed")
		}
		if bytes.Equal(read(provider.RefreshTokenPath(u.key)), token) {
			t.Fatal("the refresh token file still holds the spent token")
		}
		if fi, _ := os.Stat(provider.RefreshTokenPath(u.key)); fi.Mode().Perm() != 0o600 {
			t.Fatalf("refresh token file mode %#o", fi.Mode().Perm())
		}
		a := e.logSince(t, from)
		a.mustAll(t, "allow", "allowed")
		a.has(t, `"refreshed":true`)
		if r := opkssh(t, u.env, "status"); r.code != 0 || !strings.HasPrefix(r.stdout, "Valid: alice@example.com") {
			t.Fatalf("status after the refresh: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// Still valid: the next ssh neither refreshes nor logs in.
		if out, errOut, err := u.ssh(t, e, sshArgs(u)...); err != nil || out != userAllowed+"\n" {
			t.Fatalf("second ssh: err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		if got := op.GrantRequests(testop.GrantTypeRefreshToken) - refreshes; got != 1 {
			t.Fatalf("the second ssh refreshed again (%d refreshes)", got)
		}
	})

	t.Run("revoked at the OP", func(t *testing.T) {
		u := newLoggedInYesterday(t, op, wrapper, noBrowser)
		if n := op.RevokeRefreshTokens("alice"); n == 0 {
			t.Fatal("the OP had no refresh token to revoke")
		}
		refreshes := op.GrantRequests(testop.GrantTypeRefreshToken)
		from := e.logOffset(t)
		out, errOut, err := u.ssh(t, e, sshArgs(u)...)
		if err == nil || out != "" || !strings.Contains(errOut, "Permission denied") {
			t.Fatalf("ssh with a revoked refresh token and no browser was not refused: err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		// ssh offered yesterday's certificate, which has expired.
		a := e.logSince(t, from)
		a.mustAll(t, "deny", "cert_expired")
		a.has(t, "certificate expired")
		if !strings.Contains(errOut, "Could not renew the login without a browser: the OP no longer accepts the refresh token") {
			t.Fatalf("ssh's stderr does not say why the renewal failed:\n%s", errOut)
		}
		if op.GrantRequests(testop.GrantTypeRefreshToken) != refreshes+1 {
			t.Fatal("the refresh was not tried")
		}
		if _, err := os.Stat(provider.RefreshTokenPath(u.key)); !os.IsNotExist(err) {
			t.Fatalf("the refused refresh token file is still there (%v)", err)
		}
		if r := opkssh(t, u.env, "status"); r.code != 3 {
			t.Fatalf("status: exit %d, want 3 (expired)\n%s", r.code, r.stdout)
		}
	})
}

// newLoggedInYesterday logs a new workstation user in at op as alice with the OP's clock 25h
// behind (so the certificate has expired and the refresh token is stored), and installs the
// Match exec block running opkssh through wrapper. Its ssh runs with PATH=path.
func newLoggedInYesterday(t *testing.T, op *testop.Server, wrapper, path string) *refreshUser {
	t.Helper()
	home := t.TempDir()
	u := &refreshUser{home: home, key: filepath.Join(home, ".ssh", "id_ecdsa"), env: []string{"HOME=" + home, "SHELL=/bin/sh"}, path: path}
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	if r := opkssh(t, u.env, "provider", "add", "test", "--issuer", op.Issuer(), "--client-id", "opkssh", "--redirect-uri", redirect); r.code != 0 {
		t.Fatalf("provider add: %s%s", r.stdout, r.stderr)
	}
	op.SetNow(func() time.Time { return time.Now().Add(-25 * time.Hour) })
	r := opkssh(t, append(u.env, "FAKEBROWSER_USER=alice@example.com"), "login", "test", "--timeout", "30s")
	op.SetNow(nil)
	if r.code != 0 {
		t.Fatalf("yesterday's login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := opkssh(t, u.env, "status"); r.code != 3 {
		t.Fatalf("status of yesterday's login: exit %d, want 3\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := provider.LoadRefreshToken(provider.RefreshTokenPath(u.key)); err != nil {
		t.Fatalf("no refresh token stored: %v", err)
	}
	if r := opkssh(t, u.env, "ssh-config", "--install", "--provider", "test", "--opkssh", wrapper); r.code != 0 {
		t.Fatalf("ssh-config --install: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return u
}
