package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opkssh-team/opkssh/internal/sshdtest"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// TestSSHOptionsAndPrincipalsFrom logs in through a real sshd with a rule whose options force a
// command (sshd enforces what verify appends to its line) and a rule that takes the Unix account
// from the groups claim.
func TestSSHOptionsAndPrincipalsFrom(t *testing.T) {
	op, err := testop.Start(testop.Options{Users: []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true},
		{Subject: "dana", Email: "dana@example.com", EmailVerified: true, Groups: []string{userAllowed, "staff"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	e := startSSHD(t)
	rules := "rules:\n" +
		"  - principals: [" + userOther + "]\n    provider: test\n    identities: [{email: alice@example.com}]\n" +
		"    options: [restrict, 'command=\"echo forced for $USER\"']\n" +
		"  - principals_from: groups\n    principals_allowed: [\"opkssh-e2e-*\"]\n    provider: test\n" +
		"    identities: [{email_domain: example.com}]\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), rules)); err != nil {
		t.Fatal(err)
	}
	alice := login(t, op, "alice@example.com", "ecdsa", filepath.Join(e.keys, "alice"))
	dana := login(t, op, "dana@example.com", "ed25519", filepath.Join(e.keys, "dana"))

	t.Run("restrict and command force the command", func(t *testing.T) {
		from := e.logOffset(t)
		out, errOut, err := e.ssh(t, userOther, alice, "id", "-un")
		if err != nil || out != "forced for "+userOther+"\n" {
			t.Fatalf("err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		e.logSince(t, from).mustAll(t, "allow", "allowed")
		// restrict also turns off port forwarding: sshd refuses the remote forward at once.
		args := append(e.srv.SSHArgs(userOther, alice), "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22", "-N", "127.0.0.1")
		fwd, err := exec.Command("timeout", append([]string{"20", "ssh"}, args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(fwd), "forwarding failed") {
			t.Fatalf("port forwarding under restrict: err=%v %s", err, fwd)
		}
	})
	t.Run("principal from the groups claim", func(t *testing.T) {
		a := e.mustLogIn(t, userAllowed, dana)
		if want := `groups value \"` + userAllowed + `\" matches principals_allowed glob \"opkssh-e2e-*\"`; !strings.Contains(a.raw, want) {
			t.Fatalf("log lacks %s:\n%s", want, a.raw)
		}
		e.mustBeRefused(t, userOther, dana, "principal_not_in_claim")
	})
}

// chainDir makes a root-owned directory that the verify user can read, with a chained command
// that answers for user with the plain key at pub and notes every key type it was asked about.
func chainDir(t *testing.T, user, pub string) (cmd, calls string) {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", "opkssh-e2e-chain-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "keys"), string(data))
	calls = filepath.Join(dir, "calls")
	writeFile(t, calls, "")
	os.Chmod(calls, 0o666) // the test's own record, written by the verify user
	cmd = filepath.Join(dir, "fake-sss-keys")
	writeFile(t, cmd, "#!/bin/sh\necho \"$1 $2\" >> "+calls+"\n[ \"$1\" = "+user+" ] && cat "+filepath.Join(dir, "keys")+"\nexit 0\n")
	os.Chmod(cmd, 0o755)
	return cmd, calls
}

func plainKeyPair(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "plain")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return key
}

// noCertsChained checks that the chained command never saw an opkssh certificate.
func noCertsChained(t *testing.T, calls string) {
	t.Helper()
	data, _ := os.ReadFile(calls)
	if strings.Contains(string(data), "-cert-v01@openssh.com") {
		t.Fatalf("a certificate reached the chained command:\n%s", data)
	}
	if !strings.Contains(string(data), "ssh-ed25519") {
		t.Fatalf("the chained command was not asked about the plain key:\n%s", data)
	}
}

// mustLogInChained logs in with a plain key that the chained command answered for.
func (e *sshdEnv) mustLogInChained(t *testing.T, user, key string) {
	t.Helper()
	from := e.logOffset(t)
	out, errOut, err := e.ssh(t, user, key, "id", "-un")
	if err != nil || strings.TrimSpace(out) != user {
		t.Fatalf("ssh as %s with %s: err=%v stdout=%q stderr=%q", user, filepath.Base(key), err, out, errOut)
	}
	if a := e.logSince(t, from); !strings.Contains(a.raw, `"decision":"chain","reason":"chained"`) {
		t.Fatalf("verify did not pass the chained command's answer on:\n%s", a.raw)
	}
}

// TestSSHChain: with verify --chain, a plain key that the chained command vouches for logs in
// through sshd, an opkssh certificate still does, and no certificate reaches the command.
func TestSSHChain(t *testing.T) {
	needSSHD(t)
	op := startOP(t)
	plain := plainKeyPair(t)
	cmd, calls := chainDir(t, userAllowed, plain+".pub")
	e := startSSHDArgs(t, []string{"--chain", `"` + cmd + ` %u %t"`})
	rule := "rules:\n  - principals: [" + userAllowed + "]\n    provider: test\n    identities:\n      - email: alice@example.com\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), rule)); err != nil {
		t.Fatal(err)
	}
	alice := login(t, op, "alice@example.com", "ecdsa", filepath.Join(e.keys, "alice"))
	bob := login(t, op, "bob@example.com", "ecdsa", filepath.Join(e.keys, "bob"))

	e.mustLogInChained(t, userAllowed, plain)
	// The command prints nothing for userOther; sshd refuses.
	e.mustBeRefusedBySSHD(t, userOther, plain).mustAll(t, "deny", "chained")
	e.mustLogIn(t, userAllowed, alice)
	// bob's certificate is denied by the policy; the command then answers for his plain key
	// (printing userAllowed's key), which sshd refuses.
	if a := e.mustBeRefusedBySSHD(t, userAllowed, bob); !strings.Contains(a.raw, `"reason":"no_matching_identity"`) || strings.Contains(a.raw, `"decision":"allow"`) {
		t.Fatalf("bob:\n%s", a.raw)
	}
	noCertsChained(t, calls)
}

// TestServerInstallChainsExisting: a server whose sshd already has an AuthorizedKeysCommand
// (a stand-in for SSSD's) is explained and left alone until the administrator chooses; with
// --chain-existing and non-default paths, the drop-in carries them all, the old command keeps
// answering for plain keys through sshd, opkssh certificates log in, and uninstall gives sshd's
// configuration back as it was.
func TestServerInstallChainsExisting(t *testing.T) {
	needSSHD(t)
	startUninstalled(t)
	plain := plainKeyPair(t)
	remove, err := sshdtest.EnsureUser(userAllowed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remove() })
	cmd, calls := chainDir(t, userAllowed, plain+".pub")
	existing := "/etc/ssh/sshd_config.d/50-fake-sssd.conf"
	original := "# stands in for SSSD\nAuthorizedKeysCommand " + cmd + " %u %t\nAuthorizedKeysCommandUser nobody\n"
	writeFile(t, existing, original)
	t.Cleanup(func() { os.Remove(existing) })
	before := sshdT(t)
	alt := []string{"--config-dir", "/etc/opkssh-alt", "--cache-dir", "/var/cache/opkssh-alt", "--log-dir", "/var/log/opkssh-alt"}
	t.Cleanup(func() {
		opkssh(t, nil, append([]string{"server", "uninstall", "--purge"}, alt...)...)
		for _, p := range []string{"/etc/opkssh-alt", "/var/cache/opkssh-alt", "/var/log/opkssh-alt"} {
			os.RemoveAll(p)
		}
	})

	r := opkssh(t, nil, append([]string{"server", "install"}, alt...)...)
	if r.code == 0 || !strings.Contains(r.stdout, "50-fake-sssd.conf:2: authorizedkeyscommand "+cmd) || !strings.Contains(r.stderr, "--chain-existing") {
		t.Fatalf("install over an existing command: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat("/etc/opkssh-alt"); err == nil {
		t.Fatal("install wrote before the administrator chose")
	}
	wantLine := `AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t --policy /etc/opkssh-alt/policies.yaml --cache-dir /var/cache/opkssh-alt --log-file /var/log/opkssh-alt/verify.log --chain "` + cmd + ` %u %t"`
	r = opkssh(t, nil, append([]string{"server", "install", "--chain-existing", "--dry-run"}, alt...)...)
	if r.code != 0 || !strings.Contains(r.stdout, wantLine) {
		t.Fatalf("dry run does not show %s:\n%s%s", wantLine, r.stdout, r.stderr)
	}
	r = opkssh(t, nil, append([]string{"server", "install", "--chain-existing"}, alt...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "ok: sshd runs "+strings.TrimPrefix(wantLine, "AuthorizedKeysCommand ")) {
		t.Fatalf("install: %s%s", r.stdout, r.stderr)
	}
	if got := sshdT(t); !strings.Contains(got, "authorizedkeyscommand "+strings.TrimPrefix(wantLine, "AuthorizedKeysCommand ")) || !strings.Contains(got, "authorizedkeyscommanduser opkssh") {
		t.Fatalf("sshd -T after install:\n%s", got)
	}

	op := startOP(t)
	pol := policy(op.Issuer(), "rules:\n  - principals: ["+userAllowed+"]\n    provider: test\n    identities:\n      - email: alice@example.com\n")
	if err := os.WriteFile("/etc/opkssh-alt/policies.yaml", []byte(pol), 0o640); err != nil {
		t.Fatal(err)
	}
	srv, err := sshdtest.Start(sshdtest.Options{WorkDir: t.TempDir(), SystemConfig: "/etc/ssh/sshd_config"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	e := &sshdEnv{srv: srv, log: "/var/log/opkssh-alt/verify.log"}
	alice := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "alice"))
	e.mustLogIn(t, userAllowed, alice)
	e.mustLogInChained(t, userAllowed, plain)
	noCertsChained(t, calls)
	log, _ := os.ReadFile("/var/log/opkssh-alt/verify.log")
	if !strings.Contains(string(log), `"reason":"allowed"`) || !strings.Contains(string(log), `"reason":"chained"`) {
		t.Fatalf("decision log in the --log-dir:\n%s", log)
	}
	srv.Stop()
	// doctor reads the paths from sshd's line, quoted --chain and all.
	if r := opkssh(t, nil, "doctor"); r.code != 0 || !strings.Contains(r.stdout, "/etc/opkssh-alt/policies.yaml") {
		t.Fatalf("doctor on the chained, relocated set-up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = opkssh(t, nil, append([]string{"server", "uninstall", "--purge"}, alt...)...)
	if r.code != 0 {
		t.Fatalf("uninstall: %s%s", r.stdout, r.stderr)
	}
	if back, _ := os.ReadFile(existing); string(back) != original {
		t.Fatalf("uninstall did not restore %s:\n%s", existing, back)
	}
	if after := sshdT(t); after != before {
		t.Fatalf("sshd -T differs after uninstall:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
