package e2e

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opkssh-team/opkssh/internal/sshdtest"
)

// userSelf is the account whose own policy file lets bob in; the administrator's policy has no rule
// for it.
const userSelf = "opkssh-e2e-u"

// TestUserPolicySSH logs in through a real sshd whose verify runs as nobody and reads the
// account's own file: $HOME/.config/opkssh/policies.yaml, owned by the account, with the home
// searchable by others and the file readable by them, as README's "Per-user policies" describes.
func TestUserPolicySSH(t *testing.T) {
	op := startOP(t)
	e := startSSHD(t)
	remove, err := sshdtest.EnsureUser(userSelf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Error(err)
		}
	})
	file := writeUserPolicy(t, userSelf, "version: 1\nidentities:\n  - email: bob@example.com\n    provider: test\n")
	aliceRule := "rules:\n  - principals: [" + userAllowed + "]\n    provider: test\n    identities:\n      - email: alice@example.com\n"
	users := "user_policies:\n  enabled: true\n  providers: [test]\n"
	if err := e.install.WritePolicy(policy(op.Issuer(), aliceRule+users)); err != nil {
		t.Fatal(err)
	}
	bob := login(t, op, "bob@example.com", "ecdsa", filepath.Join(e.keys, "bob_ecdsa"))
	alice := login(t, op, "alice@example.com", "ecdsa", filepath.Join(e.keys, "alice_ecdsa"))

	t.Run("the account's file lets bob in", func(t *testing.T) {
		e.mustLogIn(t, userSelf, bob).has(t, `"granted_by":"user_policy","user_policy":"`+file+`"`)
		e.mustLogIn(t, userSelf, bob) // again, with the policy from verify's cached snapshot
	})
	t.Run("someone the file does not name is refused", func(t *testing.T) {
		e.mustBeRefused(t, userSelf, alice, "no_rule_for_principal")
	})
	t.Run("the file grants only its own account", func(t *testing.T) {
		e.mustBeRefused(t, userOther, bob, "no_rule_for_principal")
		e.mustBeRefused(t, userAllowed, bob, "no_matching_identity")
	})
	t.Run("the administrator's rules still apply", func(t *testing.T) { e.mustLogIn(t, userAllowed, alice) })
	t.Run("a group-writable file is ignored", func(t *testing.T) {
		if err := os.Chmod(file, 0o664); err != nil {
			t.Fatal(err)
		}
		e.mustBeRefused(t, userSelf, bob, "user_policy_error").has(t, `is writable by group or others (mode 0664`)
	})
	t.Run("a private home is no error: there is no file to read", func(t *testing.T) {
		if err := os.Chmod(file, 0o644); err != nil {
			t.Fatal(err)
		}
		home := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if err := os.Chmod(home, 0o700); err != nil {
			t.Fatal(err)
		}
		e.mustBeRefused(t, userSelf, bob, "no_rule_for_principal").has(t, `the verify user (uid 65534) may not search `+home)
		if err := os.Chmod(home, 0o711); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the deny list wins over the file", func(t *testing.T) {
		e.mustLogIn(t, userSelf, bob)
		if err := e.install.WritePolicy(policy(op.Issuer(), aliceRule+users+"deny:\n  - email: bob@example.com\n")); err != nil {
			t.Fatal(err)
		}
		e.mustBeRefused(t, userSelf, bob, "denied_by_deny_list")
	})
}

// writeUserPolicy puts content in name's $HOME/.config/opkssh/policies.yaml, everything owned by
// name, the directories searchable and the file readable by others (the verify user), and returns
// the file's path.
func writeUserPolicy(t *testing.T, name, content string) string {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	file := filepath.Join(u.HomeDir, ".config", "opkssh", "policies.yaml")
	if err := os.Chmod(u.HomeDir, 0o711); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(u.HomeDir, ".config"), filepath.Dir(file)} {
		if err := os.Mkdir(d, 0o711); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(file, uid, gid); err != nil {
		t.Fatal(err)
	}
	return file
}
