package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
)

// Local accounts the tests log in as; created if missing and removed afterwards.
const (
	userAllowed = "opkssh-e2e-a"
	userOther   = "opkssh-e2e-b"
)

type sshdEnv struct {
	install *sshdtest.Install
	srv     *sshdtest.Server
	keys    string // directory of client keys
	log     string // verify's decision log
}

func startSSHD(t *testing.T) *sshdEnv {
	t.Helper()
	return startSSHDArgs(t, nil)
}

// startSSHDArgs is startSSHD with more arguments for verify in the AuthorizedKeysCommand line.
func startSSHDArgs(t *testing.T, verifyArgs []string) *sshdEnv {
	t.Helper()
	needSSHD(t)
	for _, u := range []string{userAllowed, userOther} {
		remove, err := sshdtest.EnsureUser(u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := remove(); err != nil {
				t.Error(err)
			}
		})
	}
	in, err := sshdtest.NewInstall(opksshBin, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Remove() })
	work := t.TempDir()
	srv, err := sshdtest.Start(sshdtest.Options{WorkDir: work, Install: in, MemlockZero: true, VerifyArgs: verifyArgs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", srv.Log())
			log, _ := os.ReadFile(in.Log)
			t.Logf("verify log:\n%s", log)
		}
	})
	return &sshdEnv{install: in, srv: srv, keys: t.TempDir(), log: in.Log}
}

func (e *sshdEnv) ssh(t *testing.T, user, key string, command ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.srv.Run(ctx, user, key, command...)
}

// mustLogIn logs in as user with key and returns what verify logged meanwhile, which must be
// allow decisions only.
func (e *sshdEnv) mustLogIn(t *testing.T, user, key string) attempt {
	t.Helper()
	from := e.logOffset(t)
	out, errOut, err := e.ssh(t, user, key, "id", "-un")
	if err != nil || strings.TrimSpace(out) != user {
		t.Fatalf("ssh as %s with %s: err=%v stdout=%q stderr=%q", user, filepath.Base(key), err, out, errOut)
	}
	a := e.logSince(t, from)
	a.mustAll(t, "allow", "")
	return a
}

// mustBeRefused checks that sshd refuses user with key because verify denied the certificate
// for reason, and returns what verify logged for this attempt.
func (e *sshdEnv) mustBeRefused(t *testing.T, user, key, reason string) attempt {
	t.Helper()
	a := e.mustBeRefusedBySSHD(t, user, key)
	a.mustAll(t, "deny", reason)
	return a
}

// mustBeRefusedBySSHD checks that sshd refuses user with key, and returns what verify logged
// for this attempt without judging it: the caller asserts what verify decided.
func (e *sshdEnv) mustBeRefusedBySSHD(t *testing.T, user, key string) attempt {
	t.Helper()
	from := e.logOffset(t)
	out, errOut, err := e.ssh(t, user, key, "id", "-un")
	if err == nil || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("ssh as %s with %s was not refused: err=%v stdout=%q stderr=%q", user, filepath.Base(key), err, out, errOut)
	}
	return e.logSince(t, from)
}

// TestSSH logs in through a real sshd whose AuthorizedKeysCommand is the built opkssh, running
// as nobody with RLIMIT_MEMLOCK 0.
func TestSSH(t *testing.T) {
	op := startOP(t)
	e := startSSHD(t)
	aliceRule := "rules:\n  - principals: [" + userAllowed + "]\n    provider: test\n    identities:\n      - email: alice@example.com\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), aliceRule)); err != nil {
		t.Fatal(err)
	}
	aliceEC := login(t, op, "alice@example.com", "ecdsa", filepath.Join(e.keys, "alice_ecdsa"))
	aliceED := login(t, op, "alice@example.com", "ed25519", filepath.Join(e.keys, "alice_ed25519"))
	bob := login(t, op, "bob@example.com", "ecdsa", filepath.Join(e.keys, "bob_ecdsa"))

	t.Run("allowed principal runs a command", func(t *testing.T) {
		from := e.logOffset(t)
		out, errOut, err := e.ssh(t, userAllowed, aliceEC, "echo", "hello from $(id -un)")
		if err != nil || out != "hello from "+userAllowed+"\n" {
			t.Fatalf("err=%v stdout=%q stderr=%q", err, out, errOut)
		}
		e.logSince(t, from).mustAll(t, "allow", "allowed")
	})
	t.Run("ed25519 key", func(t *testing.T) { e.mustLogIn(t, userAllowed, aliceED) })
	t.Run("principal without a rule is refused", func(t *testing.T) {
		e.mustBeRefused(t, userOther, aliceEC, "no_rule_for_principal")
	})
	t.Run("identity without a rule is refused", func(t *testing.T) { e.mustBeRefused(t, userAllowed, bob, "no_matching_identity") })

	t.Run("add takes effect on the next connection", func(t *testing.T) {
		r := opkssh(t, nil, "add", userOther, "bob@example.com", "test", "--policy", e.install.Policy)
		if r.code != 0 {
			t.Fatalf("add: %s %s", r.stdout, r.stderr)
		}
		e.mustLogIn(t, userOther, bob)
	})

	t.Run("sftp", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "upload.txt")
		writeFile(t, local, "sftp payload\n")
		back := filepath.Join(t.TempDir(), "download.txt")
		batch := filepath.Join(t.TempDir(), "batch")
		remote := "/tmp/opkssh-e2e-sftp-" + strconv.Itoa(os.Getpid())
		writeFile(t, batch, fmt.Sprintf("put %s %s\nget %s %s\nrm %s\n", local, remote, remote, back, remote))
		args := append(e.srv.ClientOptions(aliceEC), "-P", strconv.Itoa(e.srv.Port), "-b", batch, userAllowed+"@127.0.0.1")
		out, err := exec.Command("sftp", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sftp: %v\n%s", err, out)
		}
		if got, _ := os.ReadFile(back); string(got) != "sftp payload\n" {
			t.Fatalf("downloaded %q", got)
		}
	})

	t.Run("port forwarding with -L", func(t *testing.T) { testForwarding(t, e, aliceEC) })

	// openpubkey's own parser refuses such a token outright; verify reads it as one group.
	t.Run("groups claim as one string", func(t *testing.T) {
		carol := login(t, op, "carol@example.com", "ecdsa", filepath.Join(e.keys, "carol_ecdsa"))
		opsRule := aliceRule + "  - principals: [" + userOther + "]\n    provider: test\n    identities:\n      - group: ops\n"
		if err := e.install.WritePolicy(policy(op.Issuer(), opsRule)); err != nil {
			t.Fatal(err)
		}
		e.mustLogIn(t, userOther, carol)
		e.mustBeRefused(t, userAllowed, carol, "no_matching_identity")
		if r := opkssh(t, nil, "inspect", carol+"-cert.pub"); r.code != 0 || !strings.Contains(r.stdout, "  Groups:       ops\n") {
			t.Fatalf("inspect: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("expired login is refused", func(t *testing.T) {
		signer, alg := logintest.NewKey("ecdsa")
		iat := time.Now().Add(-25 * time.Hour)
		compact, err := logintest.Forge(op, signer, alg, logintest.Claims(op, "alice", "alice@example.com", iat))
		if err != nil {
			t.Fatal(err)
		}
		// Unlimited certificate validity, as other clients make them: only verify can refuse it.
		cred, err := logintest.Wrap(signer, compact, iat, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(e.keys, "alice_expired")
		if err := sshcert.WriteKeyPair(key, signer, cred.Cert, "expired"); err != nil {
			t.Fatal(err)
		}
		e.mustBeRefused(t, userAllowed, key, "token_expired")
	})

	t.Run("deny entry wins over a matching rule", func(t *testing.T) {
		pol := policy(op.Issuer(), aliceRule+"deny:\n  - email: alice@example.com\n")
		if err := e.install.WritePolicy(pol); err != nil {
			t.Fatal(err)
		}
		e.mustBeRefused(t, userAllowed, aliceEC, "denied_by_deny_list")
	})

	t.Run("broken policy denies everyone", func(t *testing.T) {
		if err := e.install.WritePolicy("version: 1\nproviders: {}\nrulez: []\n"); err != nil {
			t.Fatal(err)
		}
		e.mustBeRefused(t, userOther, bob, "policy_error").has(t, "rulez")
	})
}

func testForwarding(t *testing.T, e *sshdEnv, key string) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	lport := freePort(t)
	args := append(e.srv.SSHArgs(userAllowed, key),
		"-N", "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", lport, echo.Addr().String()), "127.0.0.1")
	cmd := exec.Command("ssh", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var c net.Conn
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forwarded port never opened: %v; ssh: %s", err, stderr.String())
		}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(c, "through the tunnel")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "through the tunnel\n" {
		t.Fatalf("echo through -L: %q %v; ssh: %s", line, err, stderr.String())
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestVerifyAsSSHDRunsIt runs the binary as sshd does: as nobody, with an empty environment and
// RLIMIT_MEMLOCK 0 (openpubkey's memguard would crash here if it were linked in).
func TestVerifyAsSSHDRunsIt(t *testing.T) {
	needSSHD(t)
	op := startOP(t)
	in, err := sshdtest.NewInstall(opksshBin, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Remove()
	in.WritePolicy(policy(op.Issuer(), "rules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n"))
	key := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id"))
	b64, typ := certArgs(t, key)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	for _, tc := range []struct {
		principal string
		allowed   bool
	}{{"alice", true}, {"root", false}} {
		cmd := exec.Command("/bin/sh", "-c", `ulimit -l 0 && exec "$@"`, "sh", in.Binary, "verify", tc.principal, b64, typ, "--policy", in.Policy, "--log-file", in.Log, "--cache-dir", in.Cache)
		cmd.Env = []string{}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if tc.allowed && (err != nil || !strings.HasPrefix(stdout.String(), "cert-authority,")) {
			t.Fatalf("%s: err=%v stdout=%q stderr=%s", tc.principal, err, stdout.String(), stderr.String())
		}
		if !tc.allowed && (err == nil || stdout.Len() != 0) {
			t.Fatalf("%s: err=%v stdout=%q", tc.principal, err, stdout.String())
		}
		if strings.Contains(stderr.String(), "panic") {
			t.Fatalf("%s: verify panicked: %s", tc.principal, stderr.String())
		}
	}
	log, _ := os.ReadFile(in.Log)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 2 {
		t.Fatalf("log file written by nobody has %d lines, want 2:\n%s", len(lines), log)
	}
	// The first process fetched the OP's keys and cached them; the second used the cache.
	if !strings.Contains(lines[0], `"keys":"network"`) || !strings.Contains(lines[1], `"keys":"cache"`) {
		t.Fatalf("key cache not used across processes:\n%s", log)
	}
	// root was refused because no rule names it, not for any other failure.
	if !strings.Contains(lines[0], `"decision":"allow","reason":"allowed","principal":"alice"`) ||
		!strings.Contains(lines[1], `"decision":"deny","reason":"no_rule_for_principal","principal":"root"`) {
		t.Fatalf("decisions are not alice allowed, root without a rule:\n%s", log)
	}
}
