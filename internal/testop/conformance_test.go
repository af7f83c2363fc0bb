package testop

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jws"
	"golang.org/x/oauth2"
)

// idClaims is what opkssh reads from an ID token.
type idClaims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	AMR           []string `json:"amr"`
	AZP           string   `json:"azp"`
	AuthTime      int64    `json:"auth_time"`
	RealmAccess   struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
}

// checkLogin verifies tok as a relying party does with go-oidc and checks
// alice's claims and userinfo.
func checkLogin(t *testing.T, op *Server, f *flow, tok *oauth2.Token) {
	t.Helper()
	provider := newProvider(t, op)
	raw := idTokenOf(t, tok)
	idt, err := provider.Verifier(&oidc.Config{ClientID: f.cfg.ClientID}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Nonce != f.nonce {
		t.Errorf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	if idt.Subject != "alice" || idt.Issuer != op.Issuer() || !slices.Equal(idt.Audience, []string{f.cfg.ClientID}) {
		t.Errorf("sub, iss, aud = %q, %q, %q", idt.Subject, idt.Issuer, idt.Audience)
	}
	if got := idt.Expiry.Sub(idt.IssuedAt); got != time.Hour {
		t.Errorf("exp - iat = %v, want 1h", got)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "alice@example.com" || !c.EmailVerified || c.Name != "Alice Example" || c.AZP != f.cfg.ClientID {
		t.Errorf("claims = %+v", c)
	}
	if !slices.Equal(c.Groups, alice.Groups) || !slices.Equal(c.AMR, alice.AMR) {
		t.Errorf("groups, amr = %q, %q", c.Groups, c.AMR)
	}
	if !slices.Equal(c.RealmAccess.Roles, []string{"admin", "dev"}) {
		t.Errorf("realm_access.roles = %q", c.RealmAccess.Roles)
	}
	if c.AuthTime == 0 || c.AuthTime > idt.IssuedAt.Unix() {
		t.Errorf("auth_time = %d, iat = %d", c.AuthTime, idt.IssuedAt.Unix())
	}

	msg, err := jws.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	kid, _ := hdr.KeyID()
	typ, _ := hdr.Type()
	if wantKid, _, _ := op.SigningKey(); kid != wantKid || typ != "JWT" {
		t.Errorf("header kid, typ = %q, %q; want %q, JWT", kid, typ, wantKid)
	}

	if tok.TokenType != "Bearer" || tok.Extra("scope") != "openid email profile" || tok.Expiry.IsZero() {
		t.Errorf("token type, scope, expiry = %q, %v, %v", tok.TokenType, tok.Extra("scope"), tok.Expiry)
	}
	info, err := provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	var ic idClaims
	if err := info.Claims(&ic); err != nil {
		t.Fatal(err)
	}
	if info.Subject != "alice" || info.Email != "alice@example.com" || !info.EmailVerified ||
		!slices.Equal(ic.Groups, alice.Groups) || !slices.Equal(ic.RealmAccess.Roles, []string{"admin", "dev"}) {
		t.Errorf("userinfo = %+v, %+v", info, ic)
	}
}

func TestPublicClientWithLoginForm(t *testing.T) {
	op := startOP(t, Options{})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	tok := f.login(t, "alice@example.com", "password")
	checkLogin(t, op, f, tok)
}

func TestConfidentialClient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := newCallback(t)
			op := startOP(t, Options{
				// A secret that needs form-urlencoding in Basic credentials.
				Clients:     []Client{{ID: "corp", Secret: "s3cret/+&=", RedirectURIs: []string{cb.url()}}},
				AutoApprove: "alice",
			})
			f := newFlow(t, op, "corp", "s3cret/+&=", tc.style)
			f.cb, f.cfg.RedirectURL = cb, cb.url()
			checkLogin(t, op, f, f.login(t, "", ""))
		})
	}
}

func TestConfidentialClientWithoutPKCE(t *testing.T) {
	op := startOP(t, Options{
		Clients:     []Client{{ID: "corp", Secret: "s3cret"}},
		AutoApprove: "alice@example.com",
	})
	f := newFlow(t, op, "corp", "s3cret", oauth2.AuthStyleInHeader)
	if err := Browse(t.Context(), f.cfg.AuthCodeURL(f.state), "", ""); err != nil {
		t.Fatal(err)
	}
	tok, err := f.cfg.Exchange(t.Context(), f.cb.last().Get("code"))
	if err != nil {
		t.Fatalf("Exchange without PKCE: %v", err)
	}
	idt, err := newProvider(t, op).Verifier(&oidc.Config{ClientID: "corp"}).Verify(t.Context(), idTokenOf(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["nonce"]; ok {
		t.Errorf("nonce present although none was sent: %v", claims["nonce"])
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	op := startOP(t, Options{Keys: 3})
	var d map[string]any
	resp := getJSON(t, op.Issuer()+"/.well-known/openid-configuration", &d)
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
		t.Errorf("discovery Cache-Control = %q", cc)
	}
	for k, want := range map[string]string{
		"issuer":                 op.Issuer(),
		"authorization_endpoint": op.Issuer() + "/authorize",
		"token_endpoint":         op.Issuer() + "/token",
		"userinfo_endpoint":      op.Issuer() + "/userinfo",
		"jwks_uri":               op.Issuer() + "/jwks",
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %s", k, d[k], want)
		}
	}
	for _, k := range []string{"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"scopes_supported", "token_endpoint_auth_methods_supported", "code_challenge_methods_supported",
		"grant_types_supported", "claims_supported"} {
		if _, ok := d[k].([]any); !ok {
			t.Errorf("%s missing or not a list: %v", k, d[k])
		}
	}

	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	resp = getJSON(t, op.Issuer()+"/jwks", &set)
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=300" {
		t.Errorf("JWKS Cache-Control = %q", cc)
	}
	if len(set.Keys) != 3 {
		t.Fatalf("JWKS has %d keys, want 3", len(set.Keys))
	}
	kid, _, _ := op.SigningKey()
	if set.Keys[0]["kid"] != kid {
		t.Errorf("first JWKS key is %v, want the signing key %s", set.Keys[0]["kid"], kid)
	}
	for _, k := range set.Keys {
		if k["alg"] != "RS256" || k["use"] != "sig" || k["kty"] != "RSA" || k["kid"] == "" {
			t.Errorf("JWKS key %v", k)
		}
		if _, private := k["d"]; private {
			t.Errorf("JWKS publishes a private key")
		}
	}
	if n := op.Requests("/jwks"); n != 1 {
		t.Errorf("Requests(/jwks) = %d, want 1", n)
	}

	resp, err := http.Get(op.Issuer() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET / = %s", resp.Status)
	}
}

func getJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp
}

func TestES256(t *testing.T) {
	op := startOP(t, Options{Alg: "ES256", AutoApprove: "alice"})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	tok := f.login(t, "", "")
	if _, alg, _ := op.SigningKey(); alg != "ES256" {
		t.Fatalf("SigningKey alg = %s", alg)
	}
	checkLogin(t, op, f, tok)
}

func TestConcurrentLogins(t *testing.T) {
	op := startOP(t, Options{AutoApprove: "alice"})
	var wg sync.WaitGroup
	for range 4 {
		f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
		wg.Go(func() {
			code, err := func() (string, error) {
				if err := Browse(t.Context(), f.authURL(), "", ""); err != nil {
					return "", err
				}
				return f.cb.last().Get("code"), nil
			}()
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := f.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier)); err != nil {
				t.Error(err)
			}
		})
		wg.Go(op.RotateKeys)
	}
	wg.Wait()
}
