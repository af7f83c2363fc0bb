package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/openpubkey/openpubkey/pktoken"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/provider"
)

// refreshedLogin is alice's login issued at origIat (with auth_time), to which tests append
// refreshed ID tokens.
type refreshedLogin struct {
	t    *testing.T
	op   *testop.Server
	cred *logintest.Credential
	orig map[string]any
}

func newRefreshedLogin(t *testing.T, op *testop.Server, origIat time.Time, change func(map[string]any)) *refreshedLogin {
	t.Helper()
	signer, alg := logintest.NewKey("ecdsa")
	c := logintest.Claims(op, "alice", "alice@example.com", origIat)
	c["auth_time"] = origIat.Add(-time.Minute).Unix()
	c["groups"] = []string{"admins"}
	if change != nil {
		change(c)
	}
	compact, err := logintest.Forge(op, signer, alg, c)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := logintest.Wrap(signer, compact, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := pktoken.NewFromCompact(compact)
	if err != nil {
		t.Fatal(err)
	}
	var signed map[string]any // c plus the nonce Forge added
	if err := json.Unmarshal(pkt.Payload, &signed); err != nil {
		t.Fatal(err)
	}
	return &refreshedLogin{t: t, op: op, cred: cred, orig: signed}
}

// freshClaims are what the OP's refresh at iat would carry: the original claims without nonce.
func (l *refreshedLogin) freshClaims(iat time.Time) map[string]any {
	c := maps.Clone(l.orig)
	delete(c, "nonce")
	c["iat"], c["exp"] = iat.Unix(), iat.Add(time.Hour).Unix()
	return c
}

// with returns the login's certificate carrying fresh (a compact JWT) as refreshed ID token.
func (l *refreshedLogin) with(fresh string) *logintest.Credential {
	l.t.Helper()
	pkt, err := pktoken.NewFromCompact(l.cred.PKToken)
	if err != nil {
		l.t.Fatal(err)
	}
	pkt.FreshIDToken = []byte(fresh)
	compact, err := pkt.Compact()
	if err != nil {
		l.t.Fatal(err)
	}
	cred, err := logintest.Wrap(l.cred.Signer, compact, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		l.t.Fatal(err)
	}
	return cred
}

// signed returns the login's certificate with fresh claims signed by op.
func (l *refreshedLogin) signed(op *testop.Server, claims map[string]any) *logintest.Credential {
	l.t.Helper()
	jwt, err := op.SignIDToken(claims)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.with(jwt)
}

func TestRefreshedIDToken(t *testing.T) {
	f := setup(t)
	now := time.Now()
	opts := Options{LoadPolicy: policyFor(t, f.op.Issuer(), "")}
	yesterday := newRefreshedLogin(t, f.op, now.Add(-25*time.Hour), nil)
	today := newRefreshedLogin(t, f.op, now.Add(-time.Hour), nil)
	other, err := testop.Start(testop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	mut := func(l *refreshedLogin, change func(map[string]any)) *logintest.Credential {
		c := l.freshClaims(now)
		change(c)
		return l.signed(f.op, c)
	}
	good := yesterday.signed(f.op, yesterday.freshClaims(now))
	flipped := func() *logintest.Credential {
		jwt, _ := f.op.SignIDToken(yesterday.freshClaims(now))
		// Another base64url letter in the signature (XOR-ing the byte could turn '-' into '.').
		i := strings.LastIndexByte(jwt, '.') + 5
		b := []byte(jwt)
		b[i] = 'A'
		if jwt[i] == 'A' {
			b[i] = 'B'
		}
		return yesterday.with(string(b))
	}()

	cases := []struct {
		name      string
		principal string
		cred      *logintest.Credential
		reason    string // "" for allowed
		refreshed bool
	}{
		{"no refreshed token, yesterday's login", "alice", yesterday.cred, ReasonExpired, false},
		{"no refreshed token, today's login", "alice", today.cred, "", false},
		{"refreshed today extends yesterday's login", "alice", good, "", true},
		{"refreshed token without groups: the policy reads the original", "ops", mut(yesterday, func(c map[string]any) { delete(c, "groups") }), "", true},
		{"refreshed token changes groups: the policy reads the original", "ops", mut(yesterday, func(c map[string]any) { c["groups"] = []string{"nobody"} }), "", true},
		{"bound by the original nonce", "alice", mut(yesterday, func(c map[string]any) { c["nonce"] = yesterday.orig["nonce"]; delete(c, "auth_time") }), "", true},
		{"other sub", "alice", mut(yesterday, func(c map[string]any) { c["sub"] = "bob" }), ReasonRefreshedInvalid, false},
		{"other aud", "alice", mut(yesterday, func(c map[string]any) { c["aud"] = "someone-else" }), ReasonRefreshedInvalid, false},
		{"other email", "alice", mut(yesterday, func(c map[string]any) { c["email"] = "admin@example.com" }), ReasonRefreshedInvalid, false},
		{"other issuer", "alice", mut(yesterday, func(c map[string]any) { c["iss"] = other.Issuer() }), ReasonRefreshedInvalid, false},
		{"older than the original", "alice", mut(yesterday, func(c map[string]any) { c["iat"] = now.Add(-26 * time.Hour).Unix() }), ReasonRefreshedInvalid, false},
		{"issued in the future", "alice", mut(yesterday, func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), ReasonRefreshedInvalid, false},
		{"another login (auth_time)", "alice", mut(yesterday, func(c map[string]any) { c["auth_time"] = now.Add(-time.Minute).Unix() }), ReasonRefreshedInvalid, false},
		{"another login (nonce)", "alice", mut(yesterday, func(c map[string]any) { c["nonce"] = "another-key" }), ReasonRefreshedInvalid, false},
		{"bad signature", "alice", flipped, ReasonRefreshedInvalid, false},
		{"signed by another OP", "alice", yesterday.signed(other, yesterday.freshClaims(now)), ReasonRefreshedInvalid, false},
		{"not a JWT", "alice", yesterday.with("e30.e30.c2ln"), ReasonRefreshedInvalid, false},
		{"today's login with an invalid refreshed token", "alice", mut(today, func(c map[string]any) { c["sub"] = "bob" }), ReasonRefreshedInvalid, false},
		{"unbound refreshed token is ignored: yesterday's login stays expired", "alice", newUnbound(t, f.op, now.Add(-25*time.Hour), now), ReasonExpired, false},
		{"unbound refreshed token is ignored: today's login stays valid", "alice", newUnbound(t, f.op, now.Add(-time.Hour), now), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			o := opts
			o.Log = slog.New(slog.NewJSONHandler(&log, nil))
			res := Verify(context.Background(), o, Request{Principal: tc.principal, KeyType: tc.cred.Type, CertB64: tc.cred.CertB64})
			if tc.reason == "" && !res.Allowed {
				t.Fatalf("denied: %s %s", res.Reason, res.Detail)
			}
			if tc.reason != "" && (res.Allowed || res.Reason != tc.reason) {
				t.Fatalf("allowed=%v reason %s (%s), want denial %s", res.Allowed, res.Reason, res.Detail, tc.reason)
			}
			if res.Refreshed != tc.refreshed || strings.Contains(log.String(), `"refreshed":true`) != tc.refreshed {
				t.Fatalf("Refreshed=%v, want %v; log: %s", res.Refreshed, tc.refreshed, log.String())
			}
		})
	}
}

// newUnbound is a login at origIat without auth_time, refreshed at iat with a token that carries
// neither auth_time nor nonce, as Google's are.
func newUnbound(t *testing.T, op *testop.Server, origIat, iat time.Time) *logintest.Credential {
	l := newRefreshedLogin(t, op, origIat, func(c map[string]any) { delete(c, "auth_time") })
	return l.signed(op, l.freshClaims(iat))
}

func TestRefreshedIDTokenWithOIDCExpiration(t *testing.T) {
	f := setup(t)
	now := time.Now()
	pol, err := policy.Parse("p.yaml", []byte(fmt.Sprintf("version: 1\nproviders:\n  test:\n    issuer: %s\n    client_ids: [opkssh]\n    expiration: oidc\nrules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - sub: alice\n", f.op.Issuer())))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{LoadPolicy: func() (*policy.Policy, error) { return pol, nil }}
	l := newRefreshedLogin(t, f.op, now.Add(-2*time.Hour), nil) // its exp passed an hour ago
	if res := run(t, opts, "alice", l.cred); res.Reason != ReasonExpired {
		t.Fatalf("without refresh: %s %s", res.Reason, res.Detail)
	}
	if res := run(t, opts, "alice", l.signed(f.op, l.freshClaims(now.Add(-time.Minute)))); !res.Allowed || !res.Refreshed {
		t.Fatalf("refreshed, exp in the future: %s %s", res.Reason, res.Detail)
	}
	stale := l.freshClaims(now.Add(-90 * time.Minute)) // refreshed, but that token's exp has passed too
	if res := run(t, opts, "alice", l.signed(f.op, stale)); res.Reason != ReasonExpired {
		t.Fatalf("refreshed token past its exp: %s %s", res.Reason, res.Detail)
	}
}

// TestRefreshedByTheClient runs the real thing: a browser login at an OP whose clock is 25 hours
// behind, then the client's refresh (provider.Refresh) at the right time, and verify.
func TestRefreshedByTheClient(t *testing.T) {
	op, err := testop.Start(testop.Options{
		Users:         []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}},
		TokenLifetime: 48 * time.Hour,
		Now:           func() time.Time { return time.Now().Add(-25 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	signer, alg := logintest.NewKey("ed25519")
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := provider.Config{Issuer: op.Issuer(), ClientID: "opkssh", RedirectURIs: []string{redirect}}
	login, err := provider.Login(ctx, cfg, provider.LoginOptions{Signer: signer, Alg: alg, OpenBrowser: func(u string) error {
		go testop.Browse(ctx, u, "alice", "")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	op.SetNow(nil)
	opts := Options{LoadPolicy: policyFor(t, op.Issuer(), "")}
	compact, _ := login.PKToken.Compact()
	expired, _ := logintest.Wrap(signer, compact, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if res := run(t, opts, "alice", expired); res.Reason != ReasonExpired {
		t.Fatalf("yesterday's login: %s %s", res.Reason, res.Detail)
	}

	fresh, err := provider.Refresh(ctx, cfg, login.PKToken.Payload, login.RefreshToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	login.PKToken.FreshIDToken = fresh.IDToken
	compact, err = login.PKToken.Compact()
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := logintest.Wrap(signer, compact, fresh.Claims.IssuedAt.Add(-time.Minute), fresh.Claims.IssuedAt.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res := run(t, opts, "alice", renewed); !res.Allowed || !res.Refreshed {
		t.Fatalf("refreshed login: %s %s", res.Reason, res.Detail)
	}
}
