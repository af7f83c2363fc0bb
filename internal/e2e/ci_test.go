package e2e

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
	"github.com/opkssh-team/opkssh/verifier"
)

var b64 = base64.RawURLEncoding

// TestCILogin is a GitHub Actions job logging in with `opkssh login --ci` (the test OP plays the
// platform's token endpoint) and ssh-ing through the real sshd under a repository rule, followed
// by what other jobs and forgers try, each refused by the binary that sshd runs with its reason:
//
//	attack                                                   expected reason
//	-------------------------------------------------------  ---------------------
//	job of another repository of the same owner              no_matching_identity
//	job of a same-named repository of another owner (id)     no_matching_identity
//	expired job token (certificate without end)              token_expired
//	the OP's RS256 token, not GQ-signed                      gq_required
//	GQ proof over a token whose aud commits to another key   commitment_mismatch
func TestCILogin(t *testing.T) {
	op, err := testop.Start(testop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	job := map[string]any{"repository": "acme/app", "repository_owner_id": "1234", "ref": "refs/heads/main", "event_name": "push"}
	op.AddCIJob(testop.CIJob{RequestToken: "acme-app", Claims: job})
	op.AddCIJob(testop.CIJob{RequestToken: "acme-other", Claims: with(job, "repository", "acme/other")})
	op.AddCIJob(testop.CIJob{RequestToken: "renamed-owner", Claims: with(job, "repository_owner_id", "9999")})

	e := startSSHD(t)
	pol := "# written by the e2e test\nversion: 1\nproviders:\n  gha:\n    kind: github-actions\n    issuer: " + op.Issuer() +
		"\nrules:\n  - principals: [" + userAllowed + "]\n    provider: gha\n    identities:\n      - {repository: acme/app, repository_owner_id: 1234, ref: refs/heads/main}\n"
	if err := e.install.WritePolicy(pol); err != nil {
		t.Fatal(err)
	}
	if r := opkssh(t, nil, "policy", "check", "--policy", e.install.Policy); r.code != 0 {
		t.Fatalf("policy check: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	ciLogin := func(t *testing.T, requestToken, name string) (string, result) {
		key := filepath.Join(e.keys, name)
		env := []string{"GITHUB_ACTIONS=true", provider.EnvActionsTokenURL + "=" + op.ActionsTokenURL(), provider.EnvActionsTokenToken + "=" + requestToken}
		return key, opkssh(t, env, "login", "--ci", "--key-file", key)
	}

	key, r := ciLogin(t, "acme-app", "job")
	if r.code != 0 || !strings.Contains(r.stdout, "as long as the job's ID token") {
		t.Fatalf("login --ci: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Run("the repository's job logs in", func(t *testing.T) {
		e.mustLogIn(t, userAllowed, key).mustAll(t, "allow", "allowed")
	})
	t.Run("status and inspect", func(t *testing.T) {
		st := opkssh(t, nil, "status", "--key-file", key)
		// A job's token lives 5 minutes, within status's default --min-remaining: "expiring" (exit 2).
		if st.code != 2 || !strings.Contains(st.stdout, "Expiring: repo:acme/app:ref:refs/heads/main") || !strings.Contains(st.stdout, "CI job login (GQ256)") {
			t.Errorf("status: %d\n%s%s", st.code, st.stdout, st.stderr)
		}
		in := opkssh(t, nil, "inspect", sshcert.CertPath(key))
		if in.code != 0 || !strings.Contains(in.stdout, "OP signature GQ256") || !strings.Contains(in.stdout, "no ID token anyone could replay") {
			t.Errorf("inspect: %d\n%s%s", in.code, in.stdout, in.stderr)
		}
	})
	t.Run("no replayable token in the certificate", func(t *testing.T) {
		cert, err := sshcert.ReadCertFile(sshcert.CertPath(key))
		if err != nil {
			t.Fatal(err)
		}
		if d := sshcert.Describe(cert); d.Token == nil || d.Token.Algorithm != "GQ256" {
			t.Fatalf("OP signature is not GQ256: %+v", d.Token)
		}
		raw, _ := sshcert.PKToken(cert)
		pkt, err := verifier.ParsePKToken(raw)
		if err != nil {
			t.Fatal(err)
		}
		// Whatever the token's header says, its signature is no RS256 signature by the OP's key.
		_, _, opKey := op.SigningKey()
		hdr, payload, sig, _ := jws.SplitCompact(pkt.OpToken)
		asRS256, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
		forged := b64.EncodeToString(asRS256) + "." + string(payload) + "." + string(sig)
		if _, err := jws.Verify([]byte(forged), jws.WithKey(jwa.RS256(), opKey.Public())); err == nil || len(hdr) == 0 {
			t.Fatal("the certificate carries the OP's RS256 signature")
		}
	})
	for _, tt := range []struct{ name, token string }{
		{"job of another repository", "acme-other"},
		{"same-named repository of another owner", "renamed-owner"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k, r := ciLogin(t, tt.token, strings.ReplaceAll(tt.token, "-", "_"))
			if r.code != 0 {
				t.Fatalf("login --ci: %d %s", r.code, r.stderr)
			}
			e.mustBeRefused(t, userAllowed, k, "no_matching_identity")
		})
	}
	t.Run("a job without id-token: write is told so", func(t *testing.T) {
		r := opkssh(t, []string{"GITHUB_ACTIONS=true"}, "login", "--ci", "--key-file", filepath.Join(e.keys, "noperm"))
		if r.code == 0 || !strings.Contains(r.stderr, "id-token: write") || !strings.Contains(r.stderr, provider.EnvActionsTokenURL) {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})

	now := time.Now()
	claims := with(job, "iss", op.Issuer(), "sub", "repo:acme/app:ref:refs/heads/main", "iat", now.Unix(), "exp", now.Add(5*time.Minute).Unix())
	other, _ := logintest.NewKey("ecdsa")
	_, otherCommitment, _ := provider.NewClientInstance(other, "ES256")
	for _, tt := range []struct {
		name   string
		claims map[string]any
		gq     bool
		reason string
	}{
		{"expired job token", with(claims, "iat", now.Add(-20*time.Minute).Unix(), "exp", now.Add(-15*time.Minute).Unix()), true, "token_expired"},
		{"token without GQ", claims, false, "gq_required"},
		{"GQ proof over another commitment", with(claims, "aud", otherCommitment), true, "commitment_mismatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			signer, alg := logintest.NewKey("ecdsa")
			compact, err := logintest.ForgeCI(op, signer, alg, tt.claims, tt.gq, "")
			if err != nil {
				t.Fatal(err)
			}
			// No end of validity, as other clients make certificates: only verify can refuse.
			cred, err := logintest.Wrap(signer, compact, now.Add(-time.Hour), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			k := filepath.Join(e.keys, "forged_"+tt.reason)
			if err := sshcert.WriteKeyPair(k, signer, cred.Cert, "forged"); err != nil {
				t.Fatal(err)
			}
			e.mustBeRefused(t, userAllowed, k, tt.reason)
		})
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}
