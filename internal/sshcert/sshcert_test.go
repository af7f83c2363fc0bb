package sshcert

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newCert(t *testing.T, p Params) (*ssh.Certificate, string) {
	t.Helper()
	if p.Signer == nil {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p.Signer = k
	}
	if p.PKToken == nil {
		p.PKToken = []byte("payload:hdr:sig:cichdr:cicsig")
	}
	if p.ValidAfter.IsZero() {
		p.ValidAfter = t0.Add(-time.Minute)
	}
	c, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return c, base64.StdEncoding.EncodeToString(c.Marshal())
}

func TestNewParseRoundTrip(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, signer := range []any{nil, edKey} {
		p := Params{KeyID: "alice@example.com", ValidBefore: t0.Add(time.Hour)}
		if signer != nil {
			p.Signer = edKey
		}
		c, b64 := newCert(t, p)
		got, err := Parse(c.Type(), b64, t0)
		if err != nil {
			t.Fatalf("%s: %v", c.Type(), err)
		}
		if got.KeyId != "alice@example.com" || !HasPrincipal(got, WildcardPrincipal) {
			t.Errorf("round trip lost fields: %q %q", got.KeyId, got.ValidPrincipals)
		}
		pkt, err := PKToken(got)
		if err != nil || string(pkt) != "payload:hdr:sig:cichdr:cicsig" {
			t.Errorf("PKToken = %q, %v", pkt, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, goodB64 := newCert(t, Params{ValidBefore: t0.Add(time.Hour)})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherSigner, _ := ssh.NewSignerFromSigner(other)

	// Same certificate, re-signed by a different key: not self-signed.
	foreign := *good
	foreign.Signature = nil
	if err := foreign.SignCert(rand.Reader, otherSigner); err != nil {
		t.Fatal(err)
	}
	// Tampered after signing: the extension changed.
	tampered := *good
	tampered.Permissions.Extensions = map[string]string{ExtensionPKToken: "x"}
	hostKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	host, _ := newCert(t, Params{Signer: hostKey})
	hostSigner, _ := ssh.NewSignerFromSigner(hostKey)
	host.CertType = ssh.HostCert
	if err := host.SignCert(rand.Reader, hostSigner); err != nil {
		t.Fatal(err)
	}
	plain := base64.StdEncoding.EncodeToString(good.Key.Marshal())

	tests := []struct {
		name, keyType, b64 string
		want               string
	}{
		{"bad base64", good.Type(), "!!!", "base64"},
		{"plain key", good.Key.Type(), plain, "not a certificate type"},
		{"plain key declared as cert", good.Type(), plain, "plain"},
		{"type mismatch", "ssh-ed25519-cert-v01@openssh.com", goodB64, "declared type"},
		{"host certificate", host.Type(), b64(host), "host certificate"},
		{"foreign signer", good.Type(), b64(&foreign), "other than its own"},
		{"tampered", good.Type(), b64(&tampered), "malformed"},
		{"huge", good.Type(), strings.Repeat("A", 1<<20), "limit"},
		{"truncated", good.Type(), goodB64[:40], "malformed"},
		{"empty", good.Type(), "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.keyType, tt.b64, t0)
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want ErrMalformed containing %q", err, tt.want)
			}
		})
	}
}

// An expired certificate is reported as such, not as malformed; one that is expired and also
// forged is malformed.
func TestParseExpired(t *testing.T) {
	c, b := newCert(t, Params{ValidAfter: t0.Add(-3 * time.Hour), ValidBefore: t0.Add(-time.Hour)})
	_, err := Parse(c.Type(), b, t0)
	if !errors.Is(err, ErrExpired) || errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("Parse(expired) = %v, want ErrExpired only", err)
	}
	if _, err := Parse(c.Type(), b, t0.Add(-2*time.Hour)); err != nil {
		t.Fatalf("Parse within the window = %v", err)
	}
	tampered := *c
	tampered.KeyId = "someone else"
	if _, err := Parse(c.Type(), b64(&tampered), t0); !errors.Is(err, ErrMalformed) || errors.Is(err, ErrExpired) {
		t.Fatalf("Parse(expired and tampered) = %v, want ErrMalformed", err)
	}
	// A window that ends before it starts is malformed, whatever the time.
	bad, badB64 := newCert(t, Params{ValidAfter: t0.Add(-time.Hour), ValidBefore: t0.Add(-3 * time.Hour)})
	if _, err := Parse(bad.Type(), badB64, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Parse(inverted window) = %v, want ErrMalformed", err)
	}
}

func b64(c *ssh.Certificate) string { return base64.StdEncoding.EncodeToString(c.Marshal()) }

func TestUnlimitedValidityAccepted(t *testing.T) {
	c, b := newCert(t, Params{})
	if c.ValidBefore != ssh.CertTimeInfinity {
		t.Fatalf("ValidBefore = %d, want infinity", c.ValidBefore)
	}
	if _, err := Parse(c.Type(), b, t0.Add(10*365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func TestNoExtension(t *testing.T) {
	c, _ := newCert(t, Params{})
	delete(c.Permissions.Extensions, ExtensionPKToken)
	if _, err := PKToken(c); err == nil || !strings.Contains(err.Error(), ExtensionPKToken) {
		t.Fatalf("PKToken without extension = %v", err)
	}
}

func TestWriteKeyPairNeverOverwritesForeignKey(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "id_ecdsa")
	foreign := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nnot ours\n-----END OPENSSH PRIVATE KEY-----\n")
	os.WriteFile(keyPath, foreign, 0o600)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, _ := newCert(t, Params{Signer: k})
	if err := WriteKeyPair(keyPath, k, c, "opkssh:test"); !errors.Is(err, ErrForeignKey) {
		t.Fatalf("WriteKeyPair over a foreign key = %v, want ErrForeignKey", err)
	}
	if got, _ := os.ReadFile(keyPath); string(got) != string(foreign) {
		t.Fatal("foreign key was modified")
	}
	if _, err := os.Stat(CertPath(keyPath)); err == nil {
		t.Fatal("a certificate was written next to a foreign key")
	}
}

func TestWriteKeyPairReplacesOwnKey(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "sub", "id_ed25519")
	for i := 0; i < 2; i++ {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		c, _ := newCert(t, Params{Signer: k})
		if err := WriteKeyPair(keyPath, k, c, "opkssh:test"); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		data, _ := os.ReadFile(keyPath)
		parsed, err := ssh.ParseRawPrivateKey(data)
		if err != nil {
			t.Fatal(err)
		}
		if !k.Equal(*parsed.(*ed25519.PrivateKey)) {
			t.Fatalf("write %d: key on disk is not the new key", i)
		}
		got, err := ReadCertFile(CertPath(keyPath))
		if err != nil || string(got.Key.Marshal()) != string(c.Key.Marshal()) {
			t.Fatalf("write %d: certificate on disk: %v", i, err)
		}
		st, _ := os.Stat(keyPath)
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(keyPath))
	if len(entries) != 2 {
		t.Fatalf("left temporary files behind: %v", entries)
	}
}

func TestDescribe(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://op.example","sub":"alice","email":"a@example.com","aud":["x","y"],"iat":1764000000,"groups":["g"]}`))
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`))
	c, _ := newCert(t, Params{PKToken: []byte(payload + ":" + hdr + ":s:h:s"), KeyID: "a@example.com"})
	d := Describe(c)
	if d.Token == nil || d.Token.Email != "a@example.com" || d.Token.Issuer != "https://op.example" || len(d.Token.Audience) != 2 || d.Token.Algorithm != "RS256" {
		t.Fatalf("Describe = %+v (token %+v, err %q)", d, d.Token, d.TokenError)
	}
	if !d.SelfSigned || d.ValidBefore != nil {
		t.Errorf("self-signed %v, valid before %v", d.SelfSigned, d.ValidBefore)
	}
	if len(d.Token.Groups) != 1 || d.Token.Groups[0] != "g" {
		t.Errorf("groups %q", d.Token.Groups)
	}
	// Some OPs send one group as a plain string and iat with a fraction; verify accepts both.
	payload = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://op.example","sub":"alice","aud":"x","iat":1764000000.5,"groups":"admins"}`))
	c3, _ := newCert(t, Params{PKToken: []byte(payload + ":" + hdr + ":s:h:s")})
	if d := Describe(c3); d.Token == nil || len(d.Token.Groups) != 1 || d.Token.Groups[0] != "admins" || d.Token.IssuedAt == nil || len(d.Token.Audience) != 1 {
		t.Errorf("groups as a string: %+v (err %q)", d.Token, d.TokenError)
	}
	c2, _ := newCert(t, Params{PKToken: []byte("garbage")})
	if d := Describe(c2); d.Token != nil || d.TokenError == "" {
		t.Errorf("garbage token described as %+v", d.Token)
	}
}
