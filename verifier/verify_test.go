package verifier

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
)

type fixture struct {
	op    *testop.Server
	alice *logintest.Credential
}

func setup(t *testing.T) *fixture {
	t.Helper()
	op, err := testop.Start(testop.Options{Users: []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins"}, AMR: []string{"pwd", "mfa"}},
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, err := logintest.Login(ctx, op, "alice", "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{op: op, alice: alice}
}

func policyFor(t *testing.T, issuer, extra string) func() (*policy.Policy, error) {
	t.Helper()
	src := fmt.Sprintf(`version: 1
providers:
  test:
    issuer: %s
    client_ids: [opkssh]
    expiration: 24h
%srules:
  - principals: [alice, root]
    provider: test
    identities:
      - email: alice@example.com
  - principals: [ops]
    provider: test
    identities:
      - group: admins
`, issuer, extra)
	pol, err := policy.Parse("policies.yaml", []byte(src))
	if err != nil {
		t.Fatalf("test policy: %v", err)
	}
	return func() (*policy.Policy, error) { return pol, nil }
}

func run(t *testing.T, opts Options, principal string, c *logintest.Credential) Result {
	t.Helper()
	var log bytes.Buffer
	opts.Log = slog.New(slog.NewJSONHandler(&log, nil))
	res := Verify(context.Background(), opts, Request{Principal: principal, KeyType: c.Type, CertB64: c.CertB64})
	if res.Allowed != (res.Line != "") {
		t.Fatalf("Allowed=%v but Line=%q", res.Allowed, res.Line)
	}
	if n := strings.Count(log.String(), "\n"); n != 1 {
		t.Fatalf("decision log has %d lines, want 1:\n%s", n, log.String())
	}
	if len(c.PKToken) > 40 && strings.Contains(log.String(), string(c.PKToken[:40])) {
		t.Fatal("decision log contains the PK token")
	}
	return res
}

var lineRE = regexp.MustCompile(`^cert-authority,principals="([a-z-]+)" (ecdsa-sha2-nistp256|ssh-ed25519) [A-Za-z0-9+/=]+$`)

func TestAllowedLine(t *testing.T) {
	f := setup(t)
	opts := Options{LoadPolicy: policyFor(t, f.op.Issuer(), "")}
	for _, principal := range []string{"alice", "root", "ops"} {
		res := run(t, opts, principal, f.alice)
		if !res.Allowed {
			t.Fatalf("%s: denied %s: %s %v", principal, res.Reason, res.Detail, res.Explain)
		}
		m := lineRE.FindStringSubmatch(res.Line)
		if m == nil || m[1] != sshcert.WildcardPrincipal {
			t.Fatalf("line %q does not have the contract's form", res.Line)
		}
		wantKey := base64.StdEncoding.EncodeToString(f.alice.Cert.Key.Marshal())
		if !strings.HasSuffix(res.Line, " "+wantKey) {
			t.Fatalf("line does not carry the certificate's key")
		}
		if res.Email != "alice@example.com" || res.Fingerprint == "" {
			t.Errorf("result lacks identity: %+v", res)
		}
	}
}

func TestCertNamingThePrincipal(t *testing.T) {
	f := setup(t)
	c, err := sshcert.New(sshcert.Params{Signer: f.alice.Signer, PKToken: f.alice.PKToken, Principals: []string{"alice"}, ValidAfter: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	cred := &logintest.Credential{PKToken: f.alice.PKToken, Cert: c, Type: c.Type(), CertB64: base64.StdEncoding.EncodeToString(c.Marshal())}
	opts := Options{LoadPolicy: policyFor(t, f.op.Issuer(), "")}
	if res := run(t, opts, "alice", cred); !strings.HasPrefix(res.Line, `cert-authority,principals="alice" `) {
		t.Fatalf("got %q (%s %s)", res.Line, res.Reason, res.Detail)
	}
	// A certificate naming alice but not the wildcard cannot be used for root.
	if res := run(t, opts, "root", cred); res.Allowed || res.Reason != ReasonPrincipalMismatch {
		t.Fatalf("root with an alice-only certificate: %+v", res)
	}
}

func TestDenials(t *testing.T) {
	f := setup(t)
	iss := f.op.Issuer()
	now := time.Now()
	good := Options{LoadPolicy: policyFor(t, iss, "")}
	forge := func(mut func(map[string]any)) *logintest.Credential {
		signer, alg := logintest.NewKey("ecdsa")
		c := logintest.Claims(f.op, "alice", "alice@example.com", now)
		mut(c)
		compact, err := logintest.Forge(f.op, signer, alg, c)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := logintest.Wrap(signer, compact, now.Add(-48*time.Hour), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	swapped, _ := logintest.Wrap(otherKey, f.alice.PKToken, now.Add(-time.Minute), now.Add(time.Hour))

	parts := strings.Split(string(f.alice.PKToken), ":")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[0])
	parts[0] = base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("alice@example.com"), []byte("admin@example.com"), 1))
	tampered, _ := logintest.Wrap(f.alice.Signer, []byte(strings.Join(parts, ":")), now.Add(-time.Minute), now.Add(time.Hour))

	noExt, _ := sshcert.New(sshcert.Params{Signer: f.alice.Signer, PKToken: []byte("x"), ValidAfter: now.Add(-time.Minute)})
	delete(noExt.Permissions.Extensions, sshcert.ExtensionPKToken)
	signer, _ := sshSigner(f.alice.Signer)
	noExt.Signature = nil
	noExt.SignCert(rand.Reader, signer)
	noExtCred := &logintest.Credential{PKToken: []byte("x"), Type: noExt.Type(), CertB64: base64.StdEncoding.EncodeToString(noExt.Marshal())}

	cases := []struct {
		name      string
		opts      Options
		principal string
		cred      *logintest.Credential
		reason    string
	}{
		{"no rule for principal", good, "bob", f.alice, "no_rule_for_principal"},
		{"invalid principal", good, "-oops", f.alice, ReasonBadRequest},
		{"unknown issuer", Options{LoadPolicy: policyFor(t, "https://other.example.com", "")}, "alice", f.alice, ReasonUnknownIssuer},
		{"policy error", Options{LoadPolicy: func() (*policy.Policy, error) { return nil, fmt.Errorf("bad policy") }}, "alice", f.alice, ReasonPolicyError},
		{"key swapped into another certificate", good, "alice", swapped, ReasonKeyMismatch},
		{"payload tampered", good, "alice", tampered, ReasonCICSignature},
		{"no extension", good, "alice", noExtCred, ReasonNoPKToken},
		{"expired (24h from iat)", good, "alice", forge(func(c map[string]any) { c["iat"] = now.Add(-25 * time.Hour).Unix() }), ReasonExpired},
		{"issued in the future", good, "alice", forge(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), ReasonIssuedInFuture},
		{"wrong audience", good, "alice", forge(func(c map[string]any) { c["aud"] = "someone-else" }), ReasonAudience},
		{"nonce not committing", good, "alice", forge(func(c map[string]any) { c["nonce"] = "AAAA" }), ReasonCommitment},
		{"no nonce", good, "alice", forge(func(c map[string]any) { c["nonce"] = nil }), ReasonCommitment},
		{"issuer with trailing slash", good, "alice", forge(func(c map[string]any) { c["iss"] = iss + "/" }), ReasonUnknownIssuer},
		{"email not verified", good, "alice", forge(func(c map[string]any) { c["email_verified"] = false }), "email_not_verified"},
		{"control: forged token with honest claims is allowed", good, "alice", forge(func(c map[string]any) {}), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.opts, tc.principal, tc.cred)
			if tc.reason == "" {
				if !res.Allowed {
					t.Fatalf("denied: %s %s", res.Reason, res.Detail)
				}
				return
			}
			if res.Allowed || res.Line != "" {
				t.Fatalf("allowed, want denial %s", tc.reason)
			}
			if res.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s", res.Reason, res.Detail, tc.reason)
			}
		})
	}
}

func TestOIDCExpiration(t *testing.T) {
	f := setup(t)
	pol, err := policy.Parse("p.yaml", []byte(fmt.Sprintf("version: 1\nproviders:\n  test:\n    issuer: %s\n    client_ids: [opkssh]\n    expiration: oidc\nrules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - sub: alice\n", f.op.Issuer())))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{LoadPolicy: func() (*policy.Policy, error) { return pol, nil }}
	if res := run(t, opts, "alice", f.alice); !res.Allowed {
		t.Fatalf("fresh token denied: %s", res.Detail)
	}
	opts.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } // the test OP's tokens live 1h
	if res := run(t, opts, "alice", f.alice); res.Reason != ReasonExpired {
		t.Fatalf("after exp: %s %s", res.Reason, res.Detail)
	}
}

func TestPinnedJWKSWithOPDown(t *testing.T) {
	f := setup(t)
	resp, err := http.Get(f.op.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	jwks := new(bytes.Buffer)
	jwks.ReadFrom(resp.Body)
	resp.Body.Close()
	path := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(path, jwks.Bytes(), 0o644)
	issuer := f.op.Issuer()
	f.op.Close()

	down := Options{LoadPolicy: policyFor(t, issuer, "")}
	if res := run(t, down, "alice", f.alice); res.Reason != ReasonKeysUnavailable {
		t.Fatalf("OP down without pinned keys: %s %s", res.Reason, res.Detail)
	}
	pinned := Options{LoadPolicy: policyFor(t, issuer, "    jwks_file: "+path+"\n")}
	if res := run(t, pinned, "alice", f.alice); !res.Allowed {
		t.Fatalf("pinned keys: %s %s", res.Reason, res.Detail)
	}
}

func TestCAFileAddsTLSRoots(t *testing.T) {
	f := setup(t)
	jwks, _ := http.Get(f.op.Issuer() + "/jwks")
	body := new(bytes.Buffer)
	body.ReadFrom(jwks.Body)
	jwks.Body.Close()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, srv.URL, srv.URL+"/jwks")
		case "/jwks":
			w.Write(body.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	prov := &policy.Provider{Name: "tls", Issuer: srv.URL, ClientIDs: []string{"opkssh"}}
	if _, _, err := (Fetcher{}).Keys(context.Background(), prov, ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v, want a certificate error", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	prov.CAFile = caFile
	set, _, err := (Fetcher{}).Keys(context.Background(), prov, "")
	if err != nil || set.Len() == 0 {
		t.Fatalf("with ca_file: %v", err)
	}
}

func TestFetchTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	prov := &policy.Provider{Name: "slow", Issuer: srv.URL, ClientIDs: []string{"x"}}
	start := time.Now()
	_, _, err := (Fetcher{Timeout: 200 * time.Millisecond}).Keys(context.Background(), prov, "")
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("slow OP: err=%v after %s", err, time.Since(start))
	}
}

// Fetch keeps the OP's Date header: doctor compares it with this clock.
func TestFetchRecordsServerDate(t *testing.T) {
	f := setup(t)
	prov := &policy.Provider{Name: "test", Issuer: f.op.Issuer(), ClientIDs: []string{"opkssh"}}
	got, err := (Fetcher{}).Fetch(context.Background(), prov)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.FetchedAt.Sub(got.ServerDate); got.ServerDate.IsZero() || d < -2*time.Second || d > 2*time.Second {
		t.Fatalf("ServerDate %v, fetched at %v", got.ServerDate, got.FetchedAt)
	}
}
