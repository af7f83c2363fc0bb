package commands_test

// The CLI behaviour tests: every testdata/*.txtar file is a testscript (see
// github.com/rogpeppe/go-internal/testscript) that runs the real opkssh
// command line and checks its stdout, stderr, exit code and files.
//
// Each script gets its own test OP on loopback and these variables:
//
//	ISSUER            the test OP's issuer URL
//	REDIRECT          a free loopback redirect URI; pass it to every login, since the
//	                  default ports would collide between scripts running in parallel
//	LOGIN_URL         the URL login then prints for the browser: REDIRECT with path /login
//	FAKEBROWSER_USER  who "logs in" in the browser (default alice@example.com)
//	HOME              $WORK/home, so logins never touch the real ~/.ssh
//
// and $WORK/policies.yaml, the policy below with $ISSUER filled in, and $WORK/cache
// (mode 0700) for "opkssh verify --cache-dir", so verify never uses the machine's cache.
//
// The test OP's users (any password is accepted):
//
//	alice@example.com    sub alice, email verified, groups [admins], amr [pwd mfa]
//	bob@example.com      sub bob, email verified
//	carol@example.com    sub carol, email NOT verified
//	mallory@example.com  sub mallory, email verified, groups [admins]
//	dave                 sub dave, no email (as from OPs that send email only at userinfo)
//
// "xdg-open" is a fake browser on PATH: it completes the login at the test OP
// as $FAKEBROWSER_USER, the way a person would in a real browser. Like the real
// xdg-open, which returns once it has started a browser, it exits 0 whatever the
// OP's pages say (it prints what went wrong on stderr). With FAKEBROWSER_FAIL set
// it fails as xdg-open does on a machine without any browser (exit 3).
//
// Commands added for the scripts:
//
//	field FILE N VAR       set VAR to the N-th (from 1) space-separated field of FILE,
//	                       e.g. "field $HOME/.ssh/id_ecdsa-cert.pub 2 CERT" for sshd's %k
//	plainkey CERTFILE VAR  set VAR to the base64 of the plain public key inside a certificate
//	perm FILE MODE         check FILE's permission bits, e.g. "perm $HOME/.ssh/id_ecdsa 0600"
//	browse URL             log in at URL as $FAKEBROWSER_USER, as xdg-open does, retrying while
//	                       nothing listens there yet (for "opkssh login --no-browser &")
//	autoapprove USER       make the test OP log USER in without its login form ("" for the form)
//	exits N PROG ARGS...   run PROG like exec and check that it exits with status N
//	device approve|deny USER  approve (as USER) or deny the test OP's one pending device
//	                       login, waiting up to 10s for one to appear ("opkssh login --device &")
//	sshagent               start a real ssh-agent on $WORK/agent.sock and set SSH_AUTH_SOCK; it is
//	                       stopped (by its PID) when the script ends
//	oprequests PATH N      check that the test OP has served N requests to PATH (e.g. /authorize)
//	lock FILE / unlock FILE  take (and release) the lock file FILE as opkssh does (internal/filelock),
//	                       to hold logins back; "lock" fails if another holds it
//
// and the condition [root]: policy files must be owned by root, so scripts that
// verify need to run as root (as they do in CI).

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/opkssh-team/opkssh/commands"
	"github.com/opkssh-team/opkssh/internal/filelock"
	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshagent/agenttest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// defaultPolicy is written to $WORK/policies.yaml with $ISSUER expanded.
const defaultPolicy = `# Test policy for the opkssh CLI scripts.
version: 1
providers:
  test:  # the script's test OP
    issuer: $ISSUER
    client_ids: [opkssh]
    expiration: 24h
rules:
  # alice logs in as herself
  - principals: [alice]
    provider: test
    identities:
      - email: alice@example.com
  # members of admins, with MFA, log in as admin
  - principals: [admin]
    provider: test
    identities:
      - group: admins
    require:
      amr: [mfa]
  # anyone at example.com logs in as guest
  - principals: [guest]
    provider: test
    identities:
      - email_domain: example.com
deny:
  - email: mallory@example.com  # never, whatever the rules say
`

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"opkssh":   func() { os.Exit(commands.Main()) },
		"xdg-open": fakeBrowser,
	})
}

// fakeBrowser stands in for xdg-open, which github.com/pkg/browser runs to open
// the login URL: it logs in at the test OP as $FAKEBROWSER_USER.
func fakeBrowser() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: xdg-open URL")
		os.Exit(2)
	}
	if os.Getenv("FAKEBROWSER_FAIL") != "" {
		fmt.Fprintf(os.Stderr, "xdg-open: no method available for opening '%s'\n", os.Args[1])
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := testop.Browse(ctx, os.Args[1], os.Getenv("FAKEBROWSER_USER"), "password")
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake browser:", err)
	}
	os.Exit(0)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata",
		Setup: setupScript,
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"field":       cmdField,
			"plainkey":    cmdPlainKey,
			"perm":        cmdPerm,
			"autoapprove": cmdAutoApprove,
			"browse":      cmdBrowse,
			"exits":       cmdExits,
			"device":      cmdDevice,
			"sshagent":    cmdSSHAgent,
			"oprequests":  cmdOPRequests,
			"lock":        cmdLock,
			"unlock":      cmdUnlock,
		},
	})
}

func setupScript(env *testscript.Env) error {
	op, err := testop.Start(testop.Options{Users: []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins"}, AMR: []string{"pwd", "mfa"}},
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true},
		{Subject: "carol", Email: "carol@example.com", EmailVerified: false},
		{Subject: "mallory", Email: "mallory@example.com", EmailVerified: true, Groups: []string{"admins"}},
		{Subject: "dave"},
	}})
	if err != nil {
		return err
	}
	env.Defer(func() { op.Close() })
	env.Values[opKey{}] = op
	held := map[string]func(){}
	env.Values[lockKey{}] = held
	env.Defer(func() {
		for _, unlock := range held {
			unlock()
		}
	})
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		return err
	}
	env.Setenv("ISSUER", op.Issuer())
	// A GitHub Actions job of the test OP, for login --ci (login_ci.txtar).
	op.AddCIJob(testop.CIJob{RequestToken: "script-job", Claims: map[string]any{"repository": "acme/app", "repository_owner_id": "1234", "ref": "refs/heads/main"}})
	env.Setenv("ACTIONS_TOKEN_URL", op.ActionsTokenURL())
	gitlab, err := op.IssueCIToken(map[string]any{"project_path": "acme/infra/app", "namespace_id": "42", "ref_protected": "true",
		"sub": "project_path:acme/infra/app:ref_type:branch:ref:main"}, "OPENPUBKEY-PKTOKEN:server.example.com")
	if err != nil {
		return err
	}
	env.Setenv("GITLAB_JOB_TOKEN", gitlab)
	env.Setenv("REDIRECT", redirect)
	env.Setenv("LOGIN_URL", strings.TrimSuffix(redirect, "/login-callback")+"/login")
	env.Setenv("FAKEBROWSER_USER", "alice@example.com")
	env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
	policy := strings.ReplaceAll(defaultPolicy, "$ISSUER", op.Issuer())
	if err := os.WriteFile(filepath.Join(env.WorkDir, "policies.yaml"), []byte(policy), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(env.WorkDir, "cache"), 0o700); err != nil {
		return err
	}
	return denyGroupWrite(env.WorkDir)
}

// denyGroupWrite removes group and other write permission from $WORK and the
// files the script unpacked into it, whatever the umask: the policy loader
// refuses policy files and directories that others could change.
func denyGroupWrite(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(path, fi.Mode().Perm()&^0o022)
	})
}

// opKey is the key of the script's *testop.Server in Env.Values.
type opKey struct{}

// cmdAutoApprove switches the test OP to auto-approve mode for a user.
func cmdAutoApprove(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: autoapprove USER")
	}
	ts.Value(opKey{}).(*testop.Server).SetAutoApprove(args[0])
}

// cmdBrowse plays the browser for a login started in the background.
func cmdBrowse(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: browse URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		err := testop.Browse(ctx, args[0], ts.Getenv("FAKEBROWSER_USER"), "password")
		if err == nil {
			return
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || ctx.Err() != nil {
			ts.Fatalf("browse: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdField sets VAR to the N-th space-separated field of FILE's first line.
func cmdField(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: field FILE N VAR")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		ts.Fatalf("field: N must be a positive number, not %q", args[1])
	}
	line, _, _ := strings.Cut(ts.ReadFile(args[0]), "\n")
	fields := strings.Fields(line)
	if n > len(fields) {
		ts.Fatalf("field: %s has %d fields, not %d", args[0], len(fields), n)
	}
	ts.Setenv(args[2], fields[n-1])
}

// cmdPlainKey sets VAR to the base64 of the public key a certificate certifies.
func cmdPlainKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: plainkey CERTFILE VAR")
	}
	cert, err := sshcert.ReadCertFile(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Setenv(args[1], base64.StdEncoding.EncodeToString(cert.Key.Marshal()))
}

// cmdPerm checks a file's permission bits.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	if err != nil {
		ts.Fatalf("perm: bad mode %q", args[1])
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	switch {
	case !neg && got != os.FileMode(want):
		ts.Fatalf("perm: %s has mode %#o, want %#o", args[0], got, want)
	case neg && got == os.FileMode(want):
		ts.Fatalf("perm: %s has mode %#o", args[0], got)
	}
}

// cmdExits runs a program like exec and checks its exit status.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad status %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdDevice approves or denies the pending device login of a background "opkssh login --device".
func cmdDevice(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 || args[0] != "approve" && args[0] != "deny" {
		ts.Fatalf("usage: device approve|deny USER")
	}
	op := ts.Value(opKey{}).(*testop.Server)
	deadline := time.Now().Add(10 * time.Second)
	codes := op.PendingUserCodes()
	for ; len(codes) == 0 && time.Now().Before(deadline); codes = op.PendingUserCodes() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(codes) != 1 {
		ts.Fatalf("device: %d pending device logins, want 1", len(codes))
	}
	if args[0] == "deny" {
		ts.Check(op.DenyDevice(codes[0]))
		return
	}
	ts.Check(op.ApproveDevice(codes[0], args[1]))
}

// cmdSSHAgent starts ssh-agent for the rest of the script and points SSH_AUTH_SOCK at it.
func cmdSSHAgent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: sshagent")
	}
	sock, stop, err := agenttest.Start(ts.Getenv("WORK"))
	ts.Check(err)
	ts.Defer(stop)
	ts.Setenv("SSH_AUTH_SOCK", sock)
}

// cmdOPRequests checks how many requests the test OP has served on a path.
func cmdOPRequests(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: oprequests PATH N")
	}
	want, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("oprequests: bad count %q", args[1])
	}
	if got := ts.Value(opKey{}).(*testop.Server).Requests(args[0]); got != want {
		ts.Fatalf("the test OP served %d requests to %s, want %d", got, args[0], want)
	}
}

// lockKey is the key of the script's held locks (map[string]func(), by absolute path) in Env.Values.
type lockKey struct{}

// cmdLock takes a lock file like opkssh does, until "unlock FILE" or the end of the script.
func cmdLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: lock FILE")
	}
	path := ts.MkAbs(args[0])
	unlock, err := filelock.Lock(path, func() { ts.Fatalf("lock: %s is held by another", path) })
	ts.Check(err)
	ts.Value(lockKey{}).(map[string]func())[path] = unlock
}

// cmdUnlock releases a lock taken with "lock FILE".
func cmdUnlock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unlock FILE")
	}
	path := ts.MkAbs(args[0])
	held := ts.Value(lockKey{}).(map[string]func())
	unlock, ok := held[path]
	if !ok {
		ts.Fatalf("unlock: %s is not locked", path)
	}
	unlock()
	delete(held, path)
}
