package testop

import (
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jws"
	"golang.org/x/oauth2"
)

func kidOf(t *testing.T, token string) string {
	t.Helper()
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID()
	return kid
}

func TestKeyRotation(t *testing.T) {
	op := startOP(t, Options{AutoApprove: "alice"}) // Keys: 2
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	cfg := &oidc.Config{ClientID: "opkssh"}
	// A relying party that fetched the JWKS before the rotation.
	before := newProvider(t, op).Verifier(cfg)

	old := idTokenOf(t, f.login(t, "", ""))
	if _, err := before.Verify(t.Context(), old); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	oldKid := kidOf(t, old)

	op.RotateKeys()
	fresh := idTokenOf(t, f.login(t, "", ""))
	newKid, _, _ := op.SigningKey()
	if kidOf(t, fresh) != newKid || newKid == oldKid {
		t.Fatalf("kid after rotation = %s, signing key %s, old %s", kidOf(t, fresh), newKid, oldKid)
	}
	after := newProvider(t, op).Verifier(cfg)
	for name, v := range map[string]*oidc.IDTokenVerifier{"cached JWKS": before, "fresh JWKS": after} {
		if _, err := v.Verify(t.Context(), fresh); err != nil {
			t.Errorf("%s, new token: %v", name, err)
		}
		if _, err := v.Verify(t.Context(), old); err != nil {
			t.Errorf("%s, token signed before rotation: %v", name, err)
		}
	}

	// Two more rotations push the old key out of a two-key JWKS.
	op.RotateKeys()
	op.RotateKeys()
	if _, err := newProvider(t, op).Verifier(cfg).Verify(t.Context(), old); err == nil {
		t.Error("token of a dropped key still verifies")
	}
}

func TestSignIDToken(t *testing.T) {
	op := startOP(t, Options{Alg: "ES256", Keys: 1})
	now := time.Now()
	raw, err := op.SignIDToken(map[string]any{
		"iss": op.Issuer(), "aud": []string{"opkssh", "other"}, "sub": "mallory",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "custom": map[string]any{"a": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	idt, err := newProvider(t, op).Verifier(&oidc.Config{ClientID: "other"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Subject != "mallory" {
		t.Errorf("sub = %s", idt.Subject)
	}
	kid, alg, key := op.SigningKey()
	if kidOf(t, raw) != kid || alg != "ES256" || key == nil {
		t.Errorf("SigningKey = %s, %s, %T", kid, alg, key)
	}
	// go-oidc must refuse a different issuer although the signature is good.
	bad, _ := op.SignIDToken(map[string]any{"iss": "https://evil.example", "aud": "opkssh", "sub": "x",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	if _, err := newProvider(t, op).Verifier(&oidc.Config{ClientID: "opkssh"}).Verify(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "different provider") {
		t.Errorf("wrong issuer: %v", err)
	}
}
