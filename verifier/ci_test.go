package verifier

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/provider"
)

var acmeJob = map[string]any{"repository": "acme/app", "repository_owner_id": "1234", "ref": "refs/heads/main", "event_name": "push"}

func ciPolicy(t *testing.T, kind, issuer, identity string) func() (*policy.Policy, error) {
	t.Helper()
	src := "version: 1\nproviders:\n  ci:\n    kind: " + kind + "\n    issuer: " + issuer + "\nrules:\n  - principals: [deploy]\n    provider: ci\n    identities:\n      - " + identity + "\n"
	pol, err := policy.Parse("policies.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return func() (*policy.Policy, error) { return pol, nil }
}

func startCIOP(t *testing.T, q testop.Quirks) *testop.Server {
	op, err := testop.Start(testop.Options{Quirks: q})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op
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

func TestGitHubActionsLogin(t *testing.T) {
	op := startCIOP(t, testop.Quirks{})
	op.AddCIJob(testop.CIJob{RequestToken: "job-acme", Claims: acmeJob})
	op.AddCIJob(testop.CIJob{RequestToken: "job-other-repo", Claims: with(acmeJob, "repository", "acme/other", "sub", "repo:acme/other:ref:refs/heads/main")})
	op.AddCIJob(testop.CIJob{RequestToken: "job-other-owner", Claims: with(acmeJob, "repository_owner_id", "666")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := Options{LoadPolicy: ciPolicy(t, "github-actions", op.Issuer(), "{repository: acme/app, repository_owner_id: 1234, ref: refs/heads/main}")}

	cred, err := logintest.CILogin(ctx, logintest.ActionsEnv(op, "job-acme"), "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, opts, "deploy", cred)
	if !res.Allowed {
		t.Fatalf("CI login denied: %s %s %v", res.Reason, res.Detail, res.Explain)
	}
	if alg := headerAlg(mustOpToken(t, cred)); alg != "GQ256" {
		t.Fatalf("the certificate's OP token is %s, not GQ256", alg)
	}
	for job, want := range map[string]string{"job-other-repo": policy.ReasonNoMatchingIdentity, "job-other-owner": policy.ReasonNoMatchingIdentity} {
		c, err := logintest.CILogin(ctx, logintest.ActionsEnv(op, job), "ecdsa")
		if err != nil {
			t.Fatal(err)
		}
		if res := run(t, opts, "deploy", c); res.Allowed || res.Reason != want {
			t.Errorf("%s: %v %s %s", job, res.Allowed, res.Reason, res.Detail)
		}
	}
	if _, err := logintest.CILogin(ctx, logintest.ActionsEnv(op, "stolen"), "ecdsa"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("unknown request token: %v", err)
	}
}

func mustOpToken(t *testing.T, c *logintest.Credential) []byte {
	t.Helper()
	pkt, err := ParsePKToken(c.PKToken)
	if err != nil {
		t.Fatal(err)
	}
	return pkt.OpToken
}

func TestCIForgeries(t *testing.T) {
	op := startCIOP(t, testop.Quirks{})
	opts := Options{LoadPolicy: ciPolicy(t, "github-actions", op.Issuer(), "{repository: acme/app, repository_owner_id: 1234}")}
	now := time.Now()
	claims := with(acmeJob, "iss", op.Issuer(), "sub", "repo:acme/app:ref:refs/heads/main", "iat", now.Unix(), "exp", now.Add(5*time.Minute).Unix())
	signer, alg := logintest.NewKey("ecdsa")
	other, _ := logintest.NewKey("ecdsa")
	_, otherCommitment, _ := provider.NewClientInstance(other, "ES256")
	cases := []struct {
		name   string
		claims map[string]any
		gq     bool
		cic    string
		want   string
	}{
		{"control", claims, true, "", ReasonAllowed},
		{"no GQ (the OP's RS256 signature)", claims, false, "", ReasonGQRequired},
		{"aud commits to another key", with(claims, "aud", otherCommitment), true, "", ReasonCommitment},
		{"expired job token", with(claims, "iat", now.Add(-10*time.Minute).Unix(), "exp", now.Add(-5*time.Minute).Unix()), true, "", ReasonExpired},
		{"another issuer", with(claims, "iss", "https://token.actions.githubusercontent.com"), true, "", ReasonUnknownIssuer},
		{"aud as a list of two", with(claims, "aud", []string{"x", "y"}), true, "", ReasonClaimsMalformed},
	}
	for _, tt := range cases {
		compact, err := logintest.ForgeCI(op, signer, alg, tt.claims, tt.gq, tt.cic)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		cred, err := logintest.Wrap(signer, compact, now.Add(-time.Minute), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, opts, "deploy", cred)
		if res.Reason != tt.want {
			t.Errorf("%s: got %s (%s), want %s", tt.name, res.Reason, res.Detail, tt.want)
		}
	}
}

// TestGQBrowserLogin: an OIDC provider accepts a GQ256 proof in place of the OP's signature (login
// --gq) with every other check unchanged; require_gq accepts only that form.
func TestGQBrowserLogin(t *testing.T) {
	op := startCIOP(t, testop.Quirks{})
	now := time.Now()
	browser := map[string]any{"iss": op.Issuer(), "sub": "alice", "aud": "opkssh", "email": "alice@example.com", "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": logintest.Commitment}
	signer, alg := logintest.NewKey("ecdsa")
	plain := Options{LoadPolicy: policyFor(t, op.Issuer(), "")}
	strict := Options{LoadPolicy: policyFor(t, op.Issuer(), "    require_gq: true\n")}
	for _, tt := range []struct {
		name          string
		claims        map[string]any
		gq            bool
		plain, strict string
	}{
		{"GQ-signed", browser, true, ReasonAllowed, ReasonAllowed},
		{"RS256", browser, false, ReasonAllowed, ReasonGQRequired},
		{"GQ-signed, nonce of another key", with(browser, "nonce", "x"), true, ReasonCommitment, ReasonCommitment},
		{"GQ-signed, another client", with(browser, "aud", "other"), true, ReasonAudience, ReasonAudience},
		{"GQ-signed, expired", with(browser, "iat", now.Add(-25*time.Hour).Unix()), true, ReasonExpired, ReasonExpired},
	} {
		compact, err := logintest.ForgeCI(op, signer, alg, tt.claims, tt.gq, "")
		if err != nil {
			t.Fatal(err)
		}
		cred, _ := logintest.Wrap(signer, compact, now.Add(-time.Minute), now.Add(time.Hour))
		if res := run(t, plain, "alice", cred); res.Reason != tt.plain {
			t.Errorf("%s: got %s (%s), want %s", tt.name, res.Reason, res.Detail, tt.plain)
		}
		if res := run(t, strict, "alice", cred); res.Reason != tt.strict {
			t.Errorf("%s, require_gq: got %s (%s), want %s", tt.name, res.Reason, res.Detail, tt.strict)
		}
	}
}

func TestGitLabCILogin(t *testing.T) {
	op := startCIOP(t, testop.Quirks{})
	job := map[string]any{"project_path": "acme/infra/app", "namespace_id": "42", "ref_protected": "true", "sub": "project_path:acme/infra/app:ref_type:branch:ref:main"}
	opts := Options{LoadPolicy: ciPolicy(t, "gitlab-ci", op.Issuer(), "{project_path: acme/infra/app, namespace_id: 42, ref_protected: true}")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := op.IssueCIToken(job, "OPENPUBKEY-PKTOKEN:deploy.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := logintest.CILogin(ctx, map[string]string{"GITLAB_CI": "true", "OPENPUBKEY_JWT": tok}, "ed25519")
	if err != nil {
		t.Fatal(err)
	}
	if res := run(t, opts, "deploy", cred); !res.Allowed {
		t.Fatalf("GitLab job denied: %s %s %v", res.Reason, res.Detail, res.Explain)
	}
	// Without the aud prefix the job side refuses before signing.
	plain, _ := op.IssueCIToken(job, "https://gitlab.example.com")
	if _, err := logintest.CILogin(ctx, map[string]string{"GITLAB_CI": "true", "OPENPUBKEY_JWT": plain}, "ecdsa"); err == nil || !strings.Contains(err.Error(), "OPENPUBKEY-PKTOKEN:") {
		t.Fatalf("unprefixed aud: %v", err)
	}
	if _, err := logintest.CILogin(ctx, map[string]string{"GITLAB_CI": "true"}, "ecdsa"); err == nil || !strings.Contains(err.Error(), "OPENPUBKEY_JWT") {
		t.Fatalf("missing variable: %v", err)
	}
	// Forged: the verifier also refuses them.
	now := time.Now()
	claims := with(job, "iss", op.Issuer(), "aud", "OPENPUBKEY-PKTOKEN:x", "iat", now.Unix(), "exp", now.Add(5*time.Minute).Unix())
	signer, alg := logintest.NewKey("ecdsa")
	for _, tt := range []struct {
		name   string
		claims map[string]any
		cic    string
		want   string
	}{
		{"control", claims, "self", ReasonAllowed},
		{"aud without the prefix", with(claims, "aud", "gitlab"), "self", ReasonAudience},
		{"no cic in the GQ header", claims, "", ReasonCommitment},
		{"cic of another key", claims, "bm90IHRoZSBjb21taXRtZW50", ReasonCommitment},
	} {
		compact, err := logintest.ForgeCI(op, signer, alg, tt.claims, true, tt.cic)
		if err != nil {
			t.Fatal(err)
		}
		cred, _ := logintest.Wrap(signer, compact, now.Add(-time.Minute), now.Add(time.Hour))
		if res := run(t, opts, "deploy", cred); res.Reason != tt.want {
			t.Errorf("%s: got %s (%s), want %s", tt.name, res.Reason, res.Detail, tt.want)
		}
	}
}

func TestForgejoActionsLogin(t *testing.T) {
	op := startCIOP(t, testop.Quirks{IssuerPath: "/api/actions"})
	op.AddCIJob(testop.CIJob{RequestToken: "fj", Claims: acmeJob})
	env := logintest.ActionsEnv(op, "fj")
	if p, err := provider.DetectCI(func(k string) string { return env[k] }, ""); p != provider.CIForgejoActions {
		t.Fatalf("detected %q %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred, err := logintest.CILogin(ctx, env, "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{LoadPolicy: ciPolicy(t, "forgejo-actions", op.Issuer(), "{repository: acme/app, repository_owner_id: 1234}")}
	if res := run(t, opts, "deploy", cred); !res.Allowed {
		t.Fatalf("Forgejo job denied: %s %s", res.Reason, res.Detail)
	}
}

func TestDetectCIErrors(t *testing.T) {
	for env, want := range map[string]string{
		"":                    "no CI platform",
		"GITHUB_ACTIONS=true": "id-token: write",
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := provider.DetectCI(func(n string) string {
			if n == k {
				return v
			}
			return ""
		}, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", env, err)
		}
	}
}

// FuzzCIPKToken mutates a GQ-signed CI PK token (and its GQ header, payload and proof) under a
// github-actions and a gitlab-ci policy: verify never panics and allows only the honest token.
func FuzzCIPKToken(f *testing.F) {
	op, err := testop.Start(testop.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer op.Close()
	now := time.Now()
	claims := with(acmeJob, "iss", op.Issuer(), "sub", "repo:acme/app:ref:refs/heads/main", "project_path", "acme/app", "namespace_id", "1234",
		"iat", now.Unix(), "exp", now.Add(time.Hour).Unix())
	signer, alg := logintest.NewKey("ecdsa")
	honest, err := logintest.ForgeCI(op, signer, alg, claims, true, "")
	if err != nil {
		f.Fatal(err)
	}
	gitlab, err := logintest.ForgeCI(op, signer, alg, with(claims, "aud", "OPENPUBKEY-PKTOKEN:x"), true, "self")
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := logintest.ForgeCI(op, signer, alg, claims, false, "")
	f.Add(honest)
	f.Add(gitlab)
	f.Add(plain)
	// Pinned keys, as FuzzVerify does: a mutated kid must not make each run wait for a refetch.
	resp, err := http.Get(op.Issuer() + "/jwks")
	if err != nil {
		f.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	jwksPath := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, jwks, 0o644); err != nil {
		f.Fatal(err)
	}
	keys := Fetcher{Timeout: time.Millisecond}
	pinned := "\n    jwks_file: " + jwksPath
	policies := []func() (*policy.Policy, error){
		ciPolicyF(f, "github-actions", op.Issuer()+pinned, "{repository: acme/app, repository_owner_id: 1234}"),
		ciPolicyF(f, "gitlab-ci", op.Issuer()+pinned, "{project_path: acme/app, namespace_id: 1234}"),
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := logintest.Wrap(signer, raw, now.Add(-time.Minute), now.Add(time.Hour))
		if err != nil {
			return
		}
		for i, lp := range policies {
			res := Verify(context.Background(), Options{LoadPolicy: lp, Keys: keys}, Request{Principal: "deploy", KeyType: c.Type, CertB64: c.CertB64})
			honestOne := []([]byte){honest, gitlab}[i]
			if res.Allowed && string(raw) != string(honestOne) {
				t.Fatalf("policy %d allowed a mutated CI PK token %q", i, raw)
			}
		}
	})
}

func ciPolicyF(f *testing.F, kind, issuer, identity string) func() (*policy.Policy, error) {
	src := "version: 1\nproviders:\n  ci:\n    kind: " + kind + "\n    issuer: " + issuer + "\nrules:\n  - principals: [deploy]\n    provider: ci\n    identities:\n      - " + identity + "\n"
	pol, err := policy.Parse("policies.yaml", []byte(src))
	if err != nil {
		f.Fatal(err)
	}
	return func() (*policy.Policy, error) { return pol, nil }
}
