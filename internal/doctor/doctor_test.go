package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// fakeSSHD stands in for sshd. It is written once, before any test runs: writing an executable
// while a parallel test forks lets the child inherit the write descriptor, and exec then fails
// with ETXTBSY. Each test instead puts its canned "sshd -T" output in the file it passes as
// Options.SSHDConfig, which sshd() hands to the fake as -f.
var fakeSSHD string

const fakeSSHDScript = `#!/bin/sh
# Checks that doctor asks for the effective configuration of a root login, then prints the -f file.
# A file whose first line is "exit N" makes it print the rest on stderr and exit N, like a bad config.
if [ "$#" -ne 5 ] || [ "$1" != -T ] || [ "$2" != -f ] || [ "$4" != -C ] || [ "$5" != user=root,host=localhost,addr=127.0.0.1 ]; then
	echo "fake sshd: unexpected arguments: $*" >&2
	exit 99
fi
read -r first < "$3"
case $first in
"exit "*)
	tail -n +2 "$3" >&2
	exit "${first#exit }"
	;;
esac
cat "$3"
`

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "doctor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeSSHD = filepath.Join(dir, "sshd")
	if err := os.WriteFile(fakeSSHD, []byte(fakeSSHDScript), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// want describes one expected finding; Msg and Fix are substrings ("" matches anything).
type want struct{ Level, Check, Msg, Fix string }

func (w want) matches(f Finding) bool {
	return f.Level == w.Level && (w.Check == "" || f.Check == w.Check) && strings.Contains(f.Msg, w.Msg) && strings.Contains(f.Fix, w.Fix)
}

// expect checks that got is exactly the wanted findings, in order.
func expect(t *testing.T, got []Finding, wants ...want) {
	t.Helper()
	ok := len(got) == len(wants)
	for i := 0; ok && i < len(wants); i++ {
		ok = wants[i].matches(got[i])
	}
	if !ok {
		t.Errorf("findings:\n%s\nwant:\n%s", dump(got), dumpWants(wants))
	}
}

// find returns the first finding matching w; tests use it where other findings are incidental.
func find(got []Finding, w want) (Finding, bool) {
	for _, f := range got {
		if w.matches(f) {
			return f, true
		}
	}
	return Finding{}, false
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s: %s (fix: %s)\n", f.Level, f.Check, f.Msg, f.Fix)
	}
	return b.String()
}

func dumpWants(ws []want) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "  %s %s: ...%s... (fix: ...%s...)\n", w.Level, w.Check, w.Msg, w.Fix)
	}
	return b.String()
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is subject to the umask and ignored for an existing file.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// sshdConfig writes canned sshd -T output for the fake sshd and returns its path.
func sshdConfig(t *testing.T, out string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sshd-T")
	writeFile(t, path, out, 0o644)
	return path
}

const goodAKC = "/usr/local/bin/opkssh verify %u %k %t --policy /p.yaml"

// sshdOut is sshd -T output in its lowercase "key value" form, with the given
// AuthorizedKeysCommand and AuthorizedKeysCommandUser.
func sshdOut(akc, user string) string {
	return "port 22\npubkeyauthentication yes\nmaxauthtries 6\nauthorizedkeyscommand " + akc + "\nauthorizedkeyscommanduser " + user + "\n"
}

func TestSSHD(t *testing.T) {
	const noUser = "opkssh-doctor-test-nouser"
	if _, err := user.Lookup(noUser); err == nil {
		t.Fatalf("user %s exists; the test needs a name that does not", noUser)
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody on this system: %v", err)
	}
	goodArgs := []string{"%u", "%k", "%t", "--policy", "/p.yaml"}
	tests := []struct {
		name   string
		sshd   string // default fakeSSHD
		out    string
		wants  []want
		path   string
		args   []string
		asUser string // the verify user doctor should record, "" for none
	}{
		{
			name:  "sshd -T fails",
			out:   "exit 255\n/etc/ssh/sshd_config line 3: Bad configuration option: Foo\n/etc/ssh/sshd_config: terminating, 1 bad configuration options\n",
			wants: []want{{Fail, "sshd", "-T failed: exit status 255: /etc/ssh/sshd_config line 3: Bad configuration option: Foo", "sshd -t"}},
		},
		{
			name:  "sshd missing",
			sshd:  "/nonexistent/sshd",
			wants: []want{{Fail, "sshd", "/nonexistent/sshd -T failed", ""}},
		},
		{
			name:  "no command",
			out:   "port 22\npubkeyauthentication yes\n",
			wants: []want{{Fail, "sshd", "no AuthorizedKeysCommand", "opkssh server install"}},
		},
		{
			name:  "command none",
			out:   sshdOut("none", "none"),
			wants: []want{{Fail, "sshd", "no AuthorizedKeysCommand", "opkssh server install"}},
		},
		{
			name:  "conflicting command",
			out:   sshdOut("/usr/bin/other %u", "nobody"),
			wants: []want{{Fail, "sshd", `conflicting AuthorizedKeysCommand is in effect: "/usr/bin/other %u"`, "remove the other"}},
		},
		{
			// sshd runs only an absolute command path.
			name:  "relative path",
			out:   sshdOut("opkssh verify %u %k %t", "nobody"),
			wants: []want{{Fail, "sshd", "names opkssh by a relative path", "AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t"}},
		},
		{
			name:  "opkssh but not verify",
			out:   sshdOut("/usr/local/bin/opkssh login", "nobody"),
			wants: []want{{Fail, "sshd", "conflicting", ""}},
		},
		{
			name:   "correct",
			out:    sshdOut(goodAKC, "nobody"),
			wants:  []want{{OK, "sshd", "AuthorizedKeysCommand is " + goodAKC, ""}, {OK, "sshd", "verify runs as nobody", ""}},
			path:   "/usr/local/bin/opkssh",
			args:   goodArgs,
			asUser: "nobody",
		},
		{
			name: "missing %k",
			out:  sshdOut("/usr/local/bin/opkssh verify %u %t", "nobody"),
			wants: []want{
				{OK, "sshd", "AuthorizedKeysCommand is", ""},
				{OK, "sshd", "verify runs as nobody", ""},
				{Fail, "sshd", "does not pass %u %k %t", "AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t"},
			},
			path:   "/usr/local/bin/opkssh",
			args:   []string{"%u", "%t"},
			asUser: "nobody",
		},
		{
			name:  "runs as root",
			out:   sshdOut(goodAKC, "root"),
			wants: []want{{OK, "sshd", "AuthorizedKeysCommand is", ""}, {Warn, "sshd", "verify runs as root", "unprivileged"}},
			path:  "/usr/local/bin/opkssh",
			args:  goodArgs,
		},
		{
			name:  "no user",
			out:   sshdOut(goodAKC, "none"),
			wants: []want{{OK, "sshd", "AuthorizedKeysCommand is", ""}, {Fail, "sshd", "no AuthorizedKeysCommandUser", ""}},
			path:  "/usr/local/bin/opkssh",
			args:  goodArgs,
		},
		{
			name:  "user does not exist",
			out:   sshdOut(goodAKC, noUser),
			wants: []want{{OK, "sshd", "AuthorizedKeysCommand is", ""}, {Fail, "sshd", "AuthorizedKeysCommandUser " + noUser + " does not exist", "useradd --system " + noUser}},
			path:  "/usr/local/bin/opkssh",
			args:  goodArgs,
		},
		{
			name:   "pubkey authentication off",
			out:    strings.Replace(sshdOut(goodAKC, "nobody"), "pubkeyauthentication yes", "pubkeyauthentication no", 1),
			wants:  []want{{Fail, "sshd", "PubkeyAuthentication is off", "PubkeyAuthentication yes"}, {OK, "sshd", "AuthorizedKeysCommand is", ""}, {OK, "sshd", "verify runs as nobody", ""}},
			path:   "/usr/local/bin/opkssh",
			args:   goodArgs,
			asUser: "nobody",
		},
		{
			name:   "max auth tries 2",
			out:    strings.Replace(sshdOut(goodAKC, "nobody"), "maxauthtries 6", "maxauthtries 2", 1),
			wants:  []want{{Warn, "sshd", "MaxAuthTries is 2", "MaxAuthTries to 6"}, {OK, "sshd", "AuthorizedKeysCommand is", ""}, {OK, "sshd", "verify runs as nobody", ""}},
			path:   "/usr/local/bin/opkssh",
			args:   goodArgs,
			asUser: "nobody",
		},
		{
			// sshd -T prints the value in effect first; later lines of the same key must not win.
			name:   "first occurrence wins",
			out:    sshdOut(goodAKC, "nobody") + "authorizedkeyscommand /usr/bin/other %u\nauthorizedkeyscommanduser root\nmaxauthtries 1\npubkeyauthentication no\n",
			wants:  []want{{OK, "sshd", "AuthorizedKeysCommand is " + goodAKC, ""}, {OK, "sshd", "verify runs as nobody", ""}},
			path:   "/usr/local/bin/opkssh",
			args:   goodArgs,
			asUser: "nobody",
		},
		{
			name:  "first occurrence wins against opkssh",
			out:   sshdOut("/usr/bin/other %u", "nobody") + "authorizedkeyscommand " + goodAKC + "\n",
			wants: []want{{Fail, "sshd", "/usr/bin/other", ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := Options{SSHD: fakeSSHD, SSHDConfig: sshdConfig(t, tt.out)}
			if tt.sshd != "" {
				o.SSHD = tt.sshd
			}
			d := &doctor{o: o}
			path, args := d.sshd()
			expect(t, d.findings, tt.wants...)
			if path != tt.path || !reflect.DeepEqual(args, tt.args) {
				t.Errorf("sshd() = %q %q, want %q %q", path, args, tt.path, tt.args)
			}
			got := ""
			if d.verifyUser != nil {
				got = d.verifyUser.Username
			}
			if got != tt.asUser {
				t.Errorf("verifyUser = %q, want %q", got, tt.asUser)
			}
			if tt.name == "sshd -T fails" && strings.Contains(d.findings[0].Msg, "terminating") {
				t.Errorf("the message carries more than the first line of sshd's output: %q", d.findings[0].Msg)
			}
		})
	}
}

func TestApplyVerifyFlags(t *testing.T) {
	t.Parallel()
	defaults := Options{PolicyPath: "/default/policies.yaml", CacheDir: "/default/cache", LogFile: "/default/verify.log"}
	tests := []struct {
		name string
		args []string
		want Options
	}{
		{"none", []string{"%u", "%k", "%t"}, defaults},
		{"separate values", []string{"%u", "%k", "%t", "--policy", "/x", "--cache-dir", "/c", "--log-file", "/l"},
			Options{PolicyPath: "/x", CacheDir: "/c", LogFile: "/l"}},
		{"= values", []string{"%u", "%k", "%t", "--policy=/x", "--cache-dir=/c", "--log-file=/l"},
			Options{PolicyPath: "/x", CacheDir: "/c", LogFile: "/l"}},
		{"mixed, other flags between", []string{"%u", "%k", "%t", "--client-addr", "%C", "--policy=/x", "--timeout", "3s", "--log-file", "/l"},
			Options{PolicyPath: "/x", CacheDir: "/default/cache", LogFile: "/l"}},
		// Go's flag package would take -policy, but verify's flags are pflag's: only -- counts.
		{"single dash ignored", []string{"-policy", "/x"}, defaults},
	}
	for _, tt := range tests {
		d := &doctor{o: defaults}
		d.applyVerifyFlags(tt.args)
		if d.o != tt.want {
			t.Errorf("%s: %v gives %+v, want %+v", tt.name, tt.args, d.o, tt.want)
		}
	}
	// --stale-for is verify's, as pflag reads it; a value verify would treat as the default stays 0.
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"--stale-for", "200h"}, 200 * time.Hour},
		{[]string{"--stale-for=90m"}, 90 * time.Minute},
		{[]string{"--stale-for", "0s"}, 0},
		{[]string{"--stale-for", "soon"}, 0},
		{[]string{"%u"}, 0},
	} {
		d := &doctor{}
		d.applyVerifyFlags(tt.args)
		if d.staleFor != tt.want {
			t.Errorf("%v gives staleFor %v, want %v", tt.args, d.staleFor, tt.want)
		}
	}
}

func TestApplyVerifyFlagsFindings(t *testing.T) {
	t.Parallel()
	d := &doctor{}
	d.applyVerifyFlags([]string{"%u", "%k", "%t", "--policy-owner", "4242"})
	expect(t, d.findings, want{Warn, "sshd", "passes --policy-owner 4242", "remove --policy-owner"})
	if d.policyOwner != 4242 {
		t.Errorf("policyOwner %d, want 4242", d.policyOwner)
	}
	// An argument verify does not know makes verify fail: every login is denied.
	d = &doctor{}
	d.applyVerifyFlags([]string{"%u", "%k", "%t", "--polcy", "/x"})
	expect(t, d.findings, want{Fail, "sshd", "unknown flag: --polcy", "verify %u %k %t"})
	// sshd passes a quoted empty argument as the two quote characters.
	d = &doctor{o: Options{CacheDir: "/c"}}
	d.applyVerifyFlags([]string{"%u", "--cache-dir", `""`})
	if d.o.CacheDir != "" || !d.noCache || len(d.findings) != 0 {
		t.Errorf("--cache-dir \"\": %+v %v %v", d.o, d.noCache, d.findings)
	}
}

// TestPolicyOwner: a policy file owned by the uid verify's --policy-owner trusts loads for doctor
// as it does for verify, and is refused without it.
func TestPolicyOwner(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policies.yaml")
	writeFile(t, path, onePolicy+oneRule, 0o644)
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatalf("chown (tests run as root): %v", err)
	}
	d := &doctor{o: Options{PolicyPath: path}}
	if d.policy() != nil {
		t.Fatal("a policy owned by uid 4242 loaded without --policy-owner")
	}
	d = &doctor{o: Options{PolicyPath: path}}
	d.applyVerifyFlags([]string{"%u", "%k", "%t", "--policy-owner=4242"})
	if pol := d.policy(); pol == nil {
		t.Fatalf("with --policy-owner 4242 the policy did not load: %v", d.findings)
	}
}

func TestBinary(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o777, 0o775, 0o757} {
		t.Run(fmt.Sprintf("directory mode %04o", mode), func(t *testing.T) {
			t.Parallel()
			writableDir(t, mode)
		})
	}
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		bin := filepath.Join(t.TempDir(), "opkssh")
		d := &doctor{}
		d.binary(bin)
		expect(t, d.findings, want{Fail, "binary", bin + ": stat " + bin + ": no such file", "install it: opkssh server install"})
	})
	t.Run("root-owned chain", func(t *testing.T) {
		t.Parallel()
		const bin = "/usr/bin/true"
		for p := bin; p != "/"; p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
				t.Skipf("%s is missing, not root-owned or group/other-writable on this system", p)
			}
		}
		d := &doctor{}
		d.binary(bin)
		expect(t, d.findings, want{OK, "binary", bin + " and its directories are root-owned", ""})
	})
}

// writableDir puts a root-owned 0755 binary in a directory of the given mode and checks that
// binary() reports that directory, and only as a parent.
func writableDir(t *testing.T, mode os.FileMode) {
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Chmod explicitly: Mkdir's mode is subject to the umask.
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "opkssh")
	writeFile(t, bin, "", 0o755)
	d := &doctor{}
	d.binary(bin)
	f, ok := find(d.findings, want{Fail, "binary", fmt.Sprintf("%s is owned by uid 0 with mode %04o", dir, mode), "chown root:root " + dir + " && chmod go-w " + dir})
	if !ok {
		t.Errorf("no finding about %s:\n%s", dir, dump(d.findings))
	}
	if strings.Contains(f.Msg, bin) {
		t.Errorf("the finding names the binary, not its directory: %q", f.Msg)
	}
	if _, ok := find(d.findings, want{Fail, "binary", bin + " is owned", ""}); ok {
		t.Errorf("the binary itself (mode 0755, root) was reported:\n%s", dump(d.findings))
	}
	if _, ok := find(d.findings, want{Level: OK}); ok {
		t.Errorf("OK despite a writable directory:\n%s", dump(d.findings))
	}
}

const onePolicy = `version: 1
providers:
  corp:
    issuer: http://127.0.0.1:1
    client_ids: [opkssh]
`

const oneRule = `rules:
  - principals: [root]
    provider: corp
    identities: [{email: alice@example.com}]
`

func TestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		mode    os.FileMode
		dropIn  string // policies.d/extra.yaml, if not ""
		wants   []want
		wantNil bool
	}{
		{name: "good", data: onePolicy + oneRule, wants: []want{{OK, "policy", "loads: 1 provider, 1 rule, 0 deny entries", ""}}},
		{name: "does not parse", data: "version: 1\nproviders: [\n", wantNil: true,
			wants: []want{{Fail, "policy", "every login is denied: ", "opkssh policy check"}}},
		{name: "wrong version", data: "version: 2\n", wantNil: true, wants: []want{{Fail, "policy", "every login is denied", ""}}},
		{name: "missing", wantNil: true, wants: []want{{Fail, "policy", "does not exist", ""}}},
		{name: "group writable", data: onePolicy + oneRule, mode: 0o664, wantNil: true,
			wants: []want{{Fail, "policy", "writable by group or others", ""}}},
		{name: "no rules", data: onePolicy, wants: []want{{OK, "policy", "1 provider, 0 rules", ""}, {Warn, "policy", "no rules", "opkssh add"}}},
		{name: "broken provider", data: onePolicy + "  bad:\n    issuer: http://127.0.0.1:2\n    client_ids: []\n" + oneRule,
			wants: []want{{OK, "policy", "1 provider, 1 rule", ""}, {Fail, "policy", "provider bad is disabled, its users are denied: ", "providers:"}}},
		{name: "drop-in rule", data: onePolicy, dropIn: "version: 1\n" + oneRule,
			wants: []want{{OK, "policy", "policies.d/extra.yaml loads: 1 provider, 1 rule", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "policies.yaml")
			if tt.name != "missing" {
				mode := tt.mode
				if mode == 0 {
					mode = 0o644
				}
				writeFile(t, path, tt.data, mode)
			}
			if tt.dropIn != "" {
				if err := os.Mkdir(filepath.Join(dir, "policies.d"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "policies.d", "extra.yaml"), tt.dropIn, 0o644)
			}
			d := &doctor{o: Options{PolicyPath: path}}
			pol := d.policy()
			expect(t, d.findings, tt.wants...)
			if (pol == nil) != tt.wantNil {
				t.Errorf("policy() = %v, want nil: %v", pol, tt.wantNil)
			}
		})
	}
}

// startOP starts the test OP and returns it with a provider for it.
func startOP(t *testing.T) (*testop.Server, *policy.Provider) {
	t.Helper()
	op, err := testop.Start(testop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op, &policy.Provider{Name: "corp", Issuer: op.Issuer(), ClientIDs: []string{"opkssh"}}
}

func jwksOf(t *testing.T, op *testop.Server) []byte {
	t.Helper()
	resp, err := http.Get(op.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %s %v", resp.Status, err)
	}
	return data
}

// unreachable is a loopback port nothing listens on: connecting fails at once.
const unreachable = "http://127.0.0.1:1"

func writeCacheEntry(t *testing.T, dir string, e verifier.CacheEntry) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, verifier.CacheFileName(e.Issuer)), string(data), 0o600)
}

func providersOf(ps ...*policy.Provider) *policy.Policy {
	pol := &policy.Policy{Providers: map[string]*policy.Provider{}}
	for _, p := range ps {
		pol.Providers[p.Name] = p
	}
	return pol
}

func TestProviders(t *testing.T) {
	t.Parallel()
	op, corp := startOP(t)
	jwks := jwksOf(t, op)
	down := &policy.Provider{Name: "down", Issuer: unreachable, ClientIDs: []string{"opkssh"}}
	fetched := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name  string
		p     *policy.Provider
		cache []verifier.CacheEntry
		args  []string // verify's flags, for --stale-for
		want  want
	}{
		{name: "reachable", p: corp, want: want{OK, "provider corp", corp.Issuer + " reachable, JWKS at " + corp.Issuer + "/jwks", ""}},
		{name: "reachable with a cache entry", p: corp, cache: []verifier.CacheEntry{{Version: 1, Issuer: corp.Issuer, FetchedAt: time.Now()}},
			want: want{OK, "provider corp", "JWKS at " + corp.Issuer + "/jwks", ""}},
		{name: "unreachable, no cache", p: down, want: want{Fail, "provider down", unreachable + " is unreachable and no keys are cached", "check DNS"}},
		{name: "unreachable, another issuer cached", p: down, cache: []verifier.CacheEntry{{Version: 1, Issuer: corp.Issuer, FetchedAt: time.Now()}},
			want: want{Fail, "provider down", "no keys are cached", ""}},
		// An entry written after failed fetches only has no keys.
		{name: "unreachable, only failures cached", p: down, cache: []verifier.CacheEntry{{Version: 1, Issuer: unreachable, LastAttempt: time.Now(), LastError: "refused"}},
			want: want{Fail, "provider down", "no keys are cached", ""}},
		{name: "unreachable, cached", p: down, cache: []verifier.CacheEntry{{Version: 1, Issuer: unreachable, FetchedAt: fetched}},
			want: want{Warn, "provider down", unreachable + " is unreachable (", "check the network path"}},
		// verify refuses keys older than --stale-for (72h by default): doctor must not promise them.
		{name: "unreachable, cache past the stale window", p: down, cache: []verifier.CacheEntry{{Version: 1, Issuer: unreachable, FetchedAt: time.Now().Add(-100 * time.Hour)}},
			want: want{Fail, "provider down", "older than the stale window (72h0m0s): its users are denied", "pin its keys with jwks_file"}},
		{name: "unreachable, cache within a longer --stale-for", p: down, args: []string{"%u", "%k", "%t", "--stale-for", "200h"},
			cache: []verifier.CacheEntry{{Version: 1, Issuer: unreachable, FetchedAt: time.Now().Add(-100 * time.Hour)}},
			want:  want{Warn, "provider down", "logins use cached keys fetched", ""}},
		{name: "pinned", p: &policy.Provider{Name: "pinned", Issuer: unreachable, ClientIDs: []string{"x"}, JWKSFile: "JWKS"},
			want: want{OK, "provider pinned", "pinned keys in ", ""}},
		{name: "pinned file missing", p: &policy.Provider{Name: "pinned", Issuer: corp.Issuer, ClientIDs: []string{"x"}, JWKSFile: "/nonexistent/jwks.json"},
			want: want{Fail, "provider pinned", "jwks_file /nonexistent/jwks.json: lstat /nonexistent", "point jwks_file at the OP's JWKS document"}},
		// A pinned key file or CA file that others can write lets them log in as anyone.
		{name: "pinned file writable by others", p: &policy.Provider{Name: "pinned", Issuer: corp.Issuer, ClientIDs: []string{"x"}, JWKSFile: "JWKS-0666"},
			want: want{Fail, "provider pinned", "its users are denied: jwks_file", "owned by root and writable by root only"}},
		{name: "ca_file writable by group", p: &policy.Provider{Name: "corp", Issuer: corp.Issuer, ClientIDs: []string{"x"}, CAFile: "CA-0664"},
			want: want{Fail, "provider corp", "writable by group or others (mode 0664)", "owned by root and writable by root only"}},
		// An issuer whose discovery document names it with a trailing '/' is not "unreachable".
		{name: "issuer differs by a trailing slash", p: &policy.Provider{Name: "corp", Issuer: corp.Issuer + "/", ClientIDs: []string{"x"}},
			want: want{Fail, "provider corp", "a trailing '/' counts", "exact value of the OP's discovery document"}},
		{name: "wrong issuer path", p: &policy.Provider{Name: "corp", Issuer: corp.Issuer + "/realms/x", ClientIDs: []string{"x"}},
			want: want{Fail, "provider corp", "answers, but not with a discovery document at " + corp.Issuer + "/realms/x/.well-known/openid-configuration: discovery: GET", "check the issuer string"}},
		{name: "pinned file not a JWKS", p: &policy.Provider{Name: "pinned", Issuer: corp.Issuer, ClientIDs: []string{"x"}, JWKSFile: "JUNK"},
			want: want{Fail, "provider pinned", "parsing JWKS", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			for _, e := range tt.cache {
				writeCacheEntry(t, cache, e)
			}
			p := *tt.p
			switch p.JWKSFile {
			case "JWKS":
				p.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
				writeFile(t, p.JWKSFile, string(jwks), 0o644)
			case "JUNK":
				p.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
				writeFile(t, p.JWKSFile, `{"keys": "none"}`, 0o644)
			case "JWKS-0666":
				p.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
				writeFile(t, p.JWKSFile, string(jwks), 0o644)
				os.Chmod(p.JWKSFile, 0o666)
			}
			if p.CAFile == "CA-0664" {
				p.CAFile = filepath.Join(t.TempDir(), "ca.pem")
				writeFile(t, p.CAFile, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 0o644)
				os.Chmod(p.CAFile, 0o664)
			}
			d := &doctor{o: Options{CacheDir: cache, Timeout: 2 * time.Second}}
			d.applyVerifyFlags(tt.args)
			d.providers(t.Context(), providersOf(&p))
			expect(t, d.findings, tt.want)
			if tt.name == "unreachable, cached" && !strings.Contains(d.findings[0].Msg, "cached keys fetched "+fetched.Format(time.RFC3339)) {
				t.Errorf("the warning does not say when the keys were fetched: %q", d.findings[0].Msg)
			}
			if tt.name == "pinned" && !strings.Contains(d.findings[0].Msg, p.JWKSFile) {
				t.Errorf("the finding does not name the file: %q", d.findings[0].Msg)
			}
		})
	}
	t.Run("pinned keys never touch the network", func(t *testing.T) {
		t.Parallel()
		p := *corp
		p.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
		writeFile(t, p.JWKSFile, string(jwks), 0o644)
		// A second OP of its own, so other subtests' requests do not count.
		op2, p2 := startOP(t)
		p.Issuer = p2.Issuer
		d := &doctor{o: Options{CacheDir: t.TempDir(), Timeout: 2 * time.Second}}
		d.providers(t.Context(), providersOf(&p))
		if n := op2.Requests("/.well-known/openid-configuration") + op2.Requests("/jwks"); n != 0 {
			t.Errorf("pinned provider made %d requests to the OP", n)
		}
		expect(t, d.findings, want{OK, "provider corp", "pinned keys", ""})
	})
	t.Run("one finding per provider", func(t *testing.T) {
		t.Parallel()
		d := &doctor{o: Options{CacheDir: t.TempDir(), Timeout: 2 * time.Second}}
		d.providers(t.Context(), providersOf(corp, down))
		if len(d.findings) != 2 {
			t.Fatalf("findings:\n%s", dump(d.findings))
		}
		if _, ok := find(d.findings, want{OK, "provider corp", "", ""}); !ok {
			t.Errorf("no OK for corp:\n%s", dump(d.findings))
		}
		if _, ok := find(d.findings, want{Fail, "provider down", "", ""}); !ok {
			t.Errorf("no Fail for down:\n%s", dump(d.findings))
		}
	})
}

func TestClock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		skew  time.Duration // of the OP's clock against ours
		wants []want
	}{
		{"in sync", 0, nil},
		// The Date header has whole seconds: the skew seen may be a second more.
		{"OP ahead", time.Hour, []want{{Warn, "provider x", "this clock differs from the OP's by -", "synchronise the clock"}}},
		{"OP behind", -10 * time.Minute, []want{{Warn, "provider x", "differs from the OP's by 10m", ""}}},
		{"within a minute", 30 * time.Second, nil},
	}
	now := time.Now()
	for _, tt := range tests {
		d := &doctor{}
		d.clock("provider x", &verifier.Fetched{FetchedAt: now, ServerDate: now.Add(tt.skew).Truncate(time.Second)})
		expect(t, d.findings, tt.wants...)
	}
	// No Date header: nothing to compare.
	d := &doctor{}
	d.clock("provider x", &verifier.Fetched{FetchedAt: now})
	expect(t, d.findings)
}

func TestCacheDir(t *testing.T) {
	t.Parallel()
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody on this system: %v", err)
	}
	tests := []struct {
		name   string
		mode   os.FileMode // 0: do not create
		asUser *user.User
		want   want
	}{
		{name: "missing", want: want{Warn, "cache", "cannot ride out an OP outage", "create it: install -d -m 0700 -o opkssh "}},
		{name: "missing, verify user known", asUser: nobody, want: want{Warn, "cache", "", "install -d -m 0700 -o nobody "}},
		{name: "mode 0755", mode: 0o755, want: want{Warn, "cache", "is owned by uid 0 with mode 0755", "chown opkssh "}},
		{name: "mode 0700", mode: 0o700, want: want{OK, "cache", " is the verify user's", ""}},
		{name: "mode 0700, owned by another user", mode: 0o700, asUser: nobody, want: want{Warn, "cache", "is owned by uid 0 with mode 0700", "chown nobody "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.mode != 0 && os.Geteuid() != 0 {
				t.Skip("the cases with a directory expect it to be root's; run as root")
			}
			dir := filepath.Join(t.TempDir(), "cache")
			if tt.mode != 0 {
				if err := os.Mkdir(dir, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			d := &doctor{o: Options{CacheDir: dir}, verifyUser: tt.asUser}
			d.cacheDir()
			expect(t, d.findings, tt.want)
			if !strings.Contains(d.findings[0].Msg, dir) || (tt.want.Level != OK && !strings.HasSuffix(d.findings[0].Fix, dir)) {
				t.Errorf("the finding does not name %s: %+v", dir, d.findings[0])
			}
		})
	}
}

// A cache path that is a file, and verify run with --cache-dir "" (sshd passes the quotes through
// sshd -T as they were written), are both reported.
func TestCacheDirNotUsable(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "cache")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &doctor{o: Options{CacheDir: file}}
	d.cacheDir()
	expect(t, d.findings, want{Warn, "cache", file + ": not a directory", "install -d -m 0700"})

	for _, args := range [][]string{{"--cache-dir", `""`}, {"--cache-dir="}, {"--cache-dir", "''"}} {
		d := &doctor{o: Options{CacheDir: "/var/cache/opkssh"}}
		d.applyVerifyFlags(args)
		d.cacheDir()
		expect(t, d.findings, want{Warn, "cache", `verify runs with --cache-dir ""`, `drop --cache-dir ""`})
	}
	// A log path whose directory is a file.
	d = &doctor{o: Options{LogFile: filepath.Join(file, "verify.log")}}
	d.logDest()
	expect(t, d.findings, want{Warn, "log", file + " is not a directory", "install -d -m 0750"})
}

func TestLogDest(t *testing.T) {
	t.Parallel()
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody on this system: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("the cases expect directories owned by root; run as root")
	}
	tests := []struct {
		name    string
		dirMode os.FileMode // 0: no directory
		logMode os.FileMode // 0: no log file
		asUser  *user.User
		want    want
	}{
		{name: "missing directory", want: want{Warn, "log", "does not exist: decisions go only to syslog and stderr", "install -d -m 0750 -o opkssh "}},
		{name: "existing directory", dirMode: 0o755, want: want{OK, "log", "decisions are logged to ", ""}},
		{name: "verify user cannot write", dirMode: 0o755, asUser: nobody, want: want{Warn, "log", "the verify user nobody cannot write ", "chown nobody "}},
		{name: "verify user cannot write the file", dirMode: 0o755, logMode: 0o644, asUser: nobody, want: want{Warn, "log", "cannot write", ""}},
		{name: "verify user can write the file", dirMode: 0o755, logMode: 0o666, asUser: nobody, want: want{OK, "log", "decisions are logged to ", ""}},
		{name: "verify user can write the directory", dirMode: 0o777, asUser: nobody, want: want{OK, "log", "decisions are logged to ", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "log")
			file := filepath.Join(dir, "verify.log")
			if tt.dirMode != 0 {
				if err := os.Mkdir(dir, tt.dirMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.dirMode); err != nil {
					t.Fatal(err)
				}
			}
			if tt.logMode != 0 {
				writeFile(t, file, "", tt.logMode)
			}
			d := &doctor{o: Options{LogFile: file}, verifyUser: tt.asUser}
			d.logDest()
			expect(t, d.findings, tt.want)
			if tt.dirMode == 0 && !strings.HasSuffix(d.findings[0].Fix, " "+dir) {
				t.Errorf("the fix does not create %s: %q", dir, d.findings[0].Fix)
			}
			if tt.want.Level == OK && !strings.HasSuffix(d.findings[0].Msg, file) {
				t.Errorf("the finding does not name %s: %q", file, d.findings[0].Msg)
			}
		})
	}
}

func TestSELinux(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		enforce string // "-": no file
		wants   []want
	}{
		{"enforcing", "1\n", []want{{Warn, "selinux", "SELinux is enforcing", "ausearch"}}},
		{"permissive", "0\n", []want{{OK, "selinux", "permissive", ""}}},
		{"no SELinux", "-", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.enforce != "-" {
				writeFile(t, filepath.Join(dir, "enforce"), tt.enforce, 0o644)
			}
			d := &doctor{o: Options{SELinuxDir: dir}}
			d.selinux()
			expect(t, d.findings, tt.wants...)
		})
	}
}

func TestPrint(t *testing.T) {
	t.Parallel()
	ok := []Finding{{OK, "sshd", "fine", ""}, {Warn, "cache", "hmm", "do this"}}
	var b bytes.Buffer
	if Print(&b, ok) {
		t.Error("Print says failed without a Fail finding")
	}
	wantOut := "[ok  ] sshd       fine\n[warn] cache      hmm\n                  fix: do this\n"
	if b.String() != wantOut {
		t.Errorf("Print wrote:\n%q\nwant:\n%q", b.String(), wantOut)
	}
	b.Reset()
	if !Print(&b, append(ok, Finding{Fail, "policy", "bad", "fix the file"})) {
		t.Error("Print says not failed with a Fail finding")
	}
	if !strings.Contains(b.String(), "[FAIL] policy     bad\n") || !strings.Contains(b.String(), "fix: fix the file\n") {
		t.Errorf("Print wrote:\n%s", b.String())
	}
	b.Reset()
	if Print(&b, nil) || b.Len() != 0 {
		t.Errorf("Print(nil) wrote %q", b.String())
	}
}

func TestWritableBy(t *testing.T) {
	t.Parallel()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// Users that share only the file's group, or nothing, with it; the file is ours.
	groupMate := &user.User{Uid: me.Uid + "1", Gid: me.Gid}
	stranger := &user.User{Uid: me.Uid + "1", Gid: me.Gid + "1"}
	tests := []struct {
		name string
		mode os.FileMode
		u    *user.User
		want bool
	}{
		{"owner writable", 0o600, me, true},
		{"owner read-only", 0o444, me, false},
		{"owner without write, group with", 0o420, me, true},
		{"group writable", 0o020, groupMate, true},
		{"owner writable, not for the group", 0o644, groupMate, false},
		{"other writable", 0o002, stranger, true},
		{"owner and group writable, not for others", 0o664, stranger, false},
		{"not writable", 0o444, stranger, false},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprint(i))
		writeFile(t, path, "", tt.mode)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := writableBy(fi, tt.u); got != tt.want {
			t.Errorf("%s: writableBy(mode %04o, uid %s gid %s) = %v, want %v", tt.name, tt.mode, tt.u.Uid, tt.u.Gid, got, tt.want)
		}
	}
}

// A group-writable file counts for a user who has the file's group as a supplementary group.
func TestWritableBySupplementaryGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, "", 0o664)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	_, fileGid, _ := fileowner.Of(fi)
	member := &user.User{Uid: "4242", Gid: "4243", Username: "member"}
	old := groupsOf
	defer func() { groupsOf = old }()
	groupsOf = func(*user.User) []string { return []string{"4243", strconv.Itoa(fileGid)} }
	if !writableBy(fi, member) {
		t.Error("a supplementary group member cannot write a group-writable file")
	}
	groupsOf = func(*user.User) []string { return []string{"4243"} }
	if writableBy(fi, member) {
		t.Error("a user outside the file's group can write it")
	}
}

// runFixture lays out a whole server under temporary directories and returns Options for it,
// with sshd -T output naming the binary, policy, cache and log there.
func runFixture(t *testing.T, issuer string) (o Options, policyPath, cacheDir string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "cache", "log", "selinux"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "bin", "opkssh")
	writeFile(t, bin, "", 0o755)
	policyPath = filepath.Join(root, "etc", "policies.yaml")
	writeFile(t, policyPath, strings.Replace(onePolicy, unreachable, issuer, 1)+oneRule, 0o644)
	cacheDir = filepath.Join(root, "cache")
	writeFile(t, filepath.Join(root, "selinux", "enforce"), "0\n", 0o644)
	akc := fmt.Sprintf("%s verify %%u %%k %%t --policy %s --cache-dir=%s --log-file %s", bin, policyPath, cacheDir, filepath.Join(root, "log", "verify.log"))
	o = Options{
		SSHD:       fakeSSHD,
		SSHDConfig: sshdConfig(t, sshdOut(akc, "root")),
		// sshd's command line overrides these.
		PolicyPath: "/nonexistent/policies.yaml",
		CacheDir:   "/nonexistent/cache",
		LogFile:    "/nonexistent/log/verify.log",
		Timeout:    2 * time.Second,
		SELinuxDir: filepath.Join(root, "selinux"),
	}
	return o, policyPath, cacheDir
}

// checks lists the check names of findings in order, each run of one name once.
func checks(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		if len(out) == 0 || out[len(out)-1] != f.Check {
			out = append(out, f.Check)
		}
	}
	return out
}

func TestRun(t *testing.T) {
	t.Parallel()
	_, corp := startOP(t)
	t.Run("everything", func(t *testing.T) {
		t.Parallel()
		o, policyPath, cacheDir := runFixture(t, corp.Issuer)
		findings := Run(t.Context(), o)
		if got, wantChecks := checks(findings), []string{"sshd", "binary", "policy", "provider corp", "cache", "log", "selinux"}; !reflect.DeepEqual(got, wantChecks) {
			t.Fatalf("checks %q, want %q:\n%s", got, wantChecks, dump(findings))
		}
		for _, w := range []want{
			{OK, "sshd", "AuthorizedKeysCommand is ", ""},
			{Warn, "sshd", "verify runs as root", ""},
			// The binary is under /tmp, which is writable by everyone.
			{Fail, "binary", "", ""},
			{OK, "policy", policyPath + " loads: 1 provider, 1 rule", ""},
			{OK, "provider corp", "reachable", ""},
			{OK, "cache", cacheDir + " is the verify user's", ""},
			{OK, "log", "decisions are logged to " + filepath.Join(filepath.Dir(cacheDir), "log", "verify.log"), ""},
			{OK, "selinux", "permissive", ""},
		} {
			if _, ok := find(findings, w); !ok {
				t.Errorf("no finding %+v in:\n%s", w, dump(findings))
			}
		}
	})
	t.Run("sshd fails", func(t *testing.T) {
		t.Parallel()
		o, _, _ := runFixture(t, corp.Issuer)
		o.SSHD = "/nonexistent/sshd"
		root := t.TempDir()
		o.PolicyPath = filepath.Join(root, "policies.yaml")
		o.CacheDir = filepath.Join(root, "cache")
		o.LogFile = filepath.Join(root, "log", "verify.log")
		writeFile(t, o.PolicyPath, onePolicy, 0o644)
		findings := Run(t.Context(), o)
		// Without sshd's command line there is no binary to check, and Options' paths are used.
		if got, wantChecks := checks(findings), []string{"sshd", "policy", "provider corp", "cache", "log", "selinux"}; !reflect.DeepEqual(got, wantChecks) {
			t.Fatalf("checks %q, want %q:\n%s", got, wantChecks, dump(findings))
		}
		for _, w := range []want{
			{Fail, "sshd", "-T failed", ""},
			{OK, "policy", o.PolicyPath + " loads", ""},
			{Warn, "policy", "no rules", ""},
			{Fail, "provider corp", "is unreachable", ""},
			{Warn, "cache", o.CacheDir, ""},
			{Warn, "log", filepath.Join(root, "log") + " does not exist", ""},
		} {
			if _, ok := find(findings, w); !ok {
				t.Errorf("no finding %+v in:\n%s", w, dump(findings))
			}
		}
	})
}
