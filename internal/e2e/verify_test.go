package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLoginThenVerify is the core walk-through with the real binary and no sshd: log in through
// the scripted browser, then ask verify about an allowed and a denied principal.
func TestLoginThenVerify(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the policy file must be root-owned; run as root")
	}
	op := startOP(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for _, keyType := range []string{"ecdsa", "ed25519"} {
		t.Run(keyType, func(t *testing.T) {
			key := login(t, op, "alice@example.com", keyType, filepath.Join(dir, "id_"+keyType))
			b64, typ := certArgs(t, key)
			pol := filepath.Join(dir, "policies.yaml")
			writeFile(t, pol, policy(op.Issuer(), "rules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n"))

			allowed := opkssh(t, nil, "verify", "alice", b64, typ, "--policy", pol)
			line := regexp.MustCompile(`^cert-authority,principals="opkssh-wildcard" (ecdsa-sha2-nistp256|ssh-ed25519) [A-Za-z0-9+/=]+\n$`)
			if allowed.code != 0 || !line.MatchString(allowed.stdout) {
				t.Fatalf("allowed principal: exit %d, stdout %q, stderr %s", allowed.code, allowed.stdout, allowed.stderr)
			}
			// require.from with the client address as sshd's %C passes it (newer OpenSSH).
			fromPol := filepath.Join(dir, "from.yaml")
			writeFile(t, fromPol, policy(op.Issuer(), "rules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n    require:\n      from: [192.0.2.0/24]\n"))
			in := opkssh(t, nil, "verify", "alice", b64, typ, "--policy", fromPol, "--client-addr", "192.0.2.9 50022 192.0.2.1 22")
			out := opkssh(t, nil, "verify", "alice", b64, typ, "--policy", fromPol, "--client-addr", "198.51.100.9 50022 192.0.2.1 22")
			unknown := opkssh(t, nil, "verify", "alice", b64, typ, "--policy", fromPol)
			if in.code != 0 || out.code != 1 || unknown.code != 1 || !strings.Contains(out.stderr, `"reason":"require_from_failed"`) {
				t.Fatalf("require.from: inside %d, outside %d (%s), unknown %d", in.code, out.code, out.stderr, unknown.code)
			}
			denied := opkssh(t, nil, "verify", "root", b64, typ, "--policy", pol)
			if denied.code != 1 || denied.stdout != "" || !strings.Contains(denied.stderr, `"reason":"no_rule_for_principal"`) {
				t.Fatalf("denied principal: exit %d, stdout %q, stderr %s", denied.code, denied.stdout, denied.stderr)
			}
		})
	}
}
