package verifier

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/policy"
)

// userPolicies enables user files for the test provider.
const userPolicies = "user_policies:\n  enabled: true\n  providers: [test]\n"

const bobFile = "version: 1\nidentities:\n  - email: bob@example.com\n    provider: test\n"

// userHome is a home directory for the account carol, who has no rule in policyFor's policy.
type userHome struct {
	dir, file string
	uid       int
	looked    int // how often verify looked carol up
}

// newUserHome makes carol's home with her file granting bob. carol is the test's own user, or,
// when the test runs as root, uid 4242 with root owning the files (which user policies accept),
// so that the ownership checks pass either way.
func newUserHome(t *testing.T) *userHome {
	t.Helper()
	h := &userHome{dir: filepath.Join(t.TempDir(), "carol"), uid: os.Getuid()}
	if h.uid == 0 {
		h.uid = 4242
	}
	h.file = filepath.Join(h.dir, policy.DefaultUserPolicyPath)
	if err := os.MkdirAll(filepath.Dir(h.file), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{h.dir, filepath.Join(h.dir, ".config"), filepath.Dir(h.file)} {
		if err := os.Chmod(d, 0o755); err != nil { // umask
			t.Fatal(err)
		}
	}
	h.write(t, bobFile, 0o644)
	return h
}

func (h *userHome) write(t *testing.T, content string, mode os.FileMode) {
	t.Helper()
	os.Remove(h.file)
	if err := os.WriteFile(h.file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.file, mode); err != nil {
		t.Fatal(err)
	}
}

func (h *userHome) lookup(name string) (*user.User, error) {
	h.looked++
	if name != "carol" && name != "root" {
		return nil, user.UnknownUserError(name)
	}
	uid := strconv.Itoa(h.uid)
	if name == "root" {
		uid = "0"
	}
	return &user.User{Username: name, Uid: uid, Gid: uid, HomeDir: h.dir}, nil
}

// verifyLogged runs Verify and returns the result and the decision log line.
func verifyLogged(t *testing.T, opts Options, principal string, c *logintest.Credential) (Result, string) {
	t.Helper()
	var log bytes.Buffer
	opts.Log = slog.New(slog.NewJSONHandler(&log, nil))
	res := Verify(context.Background(), opts, Request{Principal: principal, KeyType: c.Type, CertB64: c.CertB64})
	if res.Allowed != (res.Line != "") {
		t.Fatalf("Allowed=%v but Line=%q", res.Allowed, res.Line)
	}
	return res, log.String()
}

func TestUserPolicy(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bob, err := logintest.Login(ctx, f.op, "bob", "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	iss := f.op.Issuer()
	keys := &Cache{}
	const other = "  other:\n    issuer: https://other.example.com\n    client_ids: [x]\n"

	cases := []struct {
		name      string
		extra     string // policy text before rules:
		prepare   func(t *testing.T, h *userHome)
		principal string
		cred      *logintest.Credential
		reason    string
		log       []string // the decision log line must contain these
		noLookup  bool     // the user's file must not even be looked for
		consulted bool     // the file was found and read (it is named in the log)
	}{
		{name: "the file grants bob", extra: userPolicies, reason: ReasonAllowed, consulted: true,
			log: []string{`"granted_by":"user_policy"`, `"user_policy":"FILE"`, `"detail":"allowed by rule at FILE:2"`}},
		{name: "identity not in the file", extra: userPolicies, cred: f.alice, reason: policy.ReasonNoRule, consulted: true,
			log: []string{`"user_policy":"FILE"`, `rule at FILE:2: bob@example.com (FILE:3): token email is \"alice@example.com\"`}},
		{name: "missing file", extra: userPolicies, reason: policy.ReasonNoRule,
			prepare: func(t *testing.T, h *userHome) { os.Remove(h.file) },
			log:     []string{`no user policy file: FILE does not exist`}},
		{name: "file owned by another user", extra: userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) {
				if os.Getuid() != 0 {
					t.Skip("giving a file away needs root")
				}
				if err := os.Chown(h.file, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			},
			log: []string{`FILE is owned by uid 65534, not by carol or root; fix: chown carol FILE`}},
		{name: "group-writable file", extra: userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) { h.write(t, bobFile, 0o664) },
			log:     []string{`"user_policy":"FILE"`, `FILE is writable by group or others (mode 0664`}},
		{name: "symbolic link", extra: userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) {
				target := filepath.Join(h.dir, "real.yaml")
				os.WriteFile(target, []byte(bobFile), 0o644)
				os.Remove(h.file)
				os.Symlink(target, h.file)
			},
			log: []string{`FILE is a symbolic link, and verify follows none below the home`}},
		{name: "FIFO", extra: userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) {
				os.Remove(h.file)
				if err := syscall.Mkfifo(h.file, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			log: []string{`FILE is a named pipe; it must be a regular file`}},
		{name: "directory writable by others", extra: userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) { os.Chmod(filepath.Dir(h.file), 0o757) },
			log:     []string{`/.config/opkssh is writable by group or others (mode 0757`}},
		{name: "invalid file", extra: userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) {
				h.write(t, "version: 1\nidentities:\n  - email_domain: example.com\n    provider: test\n", 0o644)
			},
			log: []string{`"user policy ignored:"`, `FILE:3: identities[0].email_domain: email_domain identities are not allowed`}},
		{name: "the file names a provider not allowed", extra: other + userPolicies, reason: ReasonUserPolicyError,
			prepare: func(t *testing.T, h *userHome) {
				h.write(t, bobFile+"  - sub: bob\n    provider: other\n", 0o644)
			},
			log: []string{`FILE:6: identities[1].provider: provider \"other\" is not one that user policies may name (allowed: test)`}},
		{name: "token's provider not allowed for user files", extra: other + "user_policies:\n  enabled: true\n  providers: [other]\n",
			reason: policy.ReasonNoRule, noLookup: true},
		{name: "deny list wins", extra: userPolicies + "deny:\n  - email: bob@example.com\n", reason: policy.ReasonDenyList, noLookup: true},
		{name: "disabled: never read", extra: "user_policies:\n  enabled: false\n", reason: policy.ReasonNoRule, noLookup: true,
			prepare: func(t *testing.T, h *userHome) { h.write(t, "garbage", 0o666) }},
		{name: "absent: never read", reason: policy.ReasonNoRule, noLookup: true},
		{name: "an admin rule allows: not read", extra: userPolicies, principal: "alice", cred: f.alice, reason: ReasonAllowed, noLookup: true},
		{name: "root's home is never read", extra: userPolicies, principal: "root", reason: policy.ReasonNoMatchingIdentity,
			log: []string{`user policies are never read for uid 0 (root)`}},
		{name: "unknown account", extra: userPolicies, principal: "dave", reason: policy.ReasonNoRule,
			log: []string{`user policy not consulted: looking up \"dave\"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newUserHome(t)
			if tc.prepare != nil {
				tc.prepare(t, h)
			}
			principal, cred := tc.principal, tc.cred
			if principal == "" {
				principal = "carol"
			}
			if cred == nil {
				cred = bob
			}
			opts := Options{LoadPolicy: policyFor(t, iss, tc.extra), Keys: keys, LookupUser: h.lookup}
			done := make(chan struct{})
			var res Result
			var log string
			go func() { res, log = verifyLogged(t, opts, principal, cred); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("verify hangs (a FIFO opened for reading?)")
			}
			if res.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s\n%s", res.Reason, res.Detail, tc.reason, log)
			}
			if res.UserPolicy.Granted != (tc.reason == ReasonAllowed && principal == "carol") {
				t.Errorf("UserPolicy = %+v", res.UserPolicy)
			}
			for _, want := range tc.log {
				want = strings.ReplaceAll(want, "FILE", h.file)
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s:\n%s", want, log)
				}
			}
			if tc.noLookup && h.looked != 0 {
				t.Errorf("the user's file was looked for")
			}
			if !tc.noLookup && h.looked == 0 {
				t.Errorf("the user's file was not looked for")
			}
			if named := strings.Contains(log, `"user_policy":`); named != (tc.consulted || tc.reason == ReasonUserPolicyError) {
				t.Errorf("log names a user policy: %v, want %v:\n%s", named, !named, log)
			}
		})
	}
}
