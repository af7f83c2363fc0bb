package sshcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// FuzzParse feeds arbitrary %t/%k pairs to Parse. Errors are fine; a certificate Parse accepts
// is a user certificate of the declared type, signed by its own key, that marshals back to the
// exact bytes it came from (so what verify checked is what sshd holds) and parses again; Describe
// calls it self-signed and fingerprints its key.
func FuzzParse(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := New(Params{Signer: k, PKToken: []byte("e30:e30:c2ln:e30:c2ln"), KeyID: "seed"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Type(), base64.StdEncoding.EncodeToString(c.Marshal()))
	// A restricted certificate, whose critical options Parse must read.
	r, err := New(Params{Signer: k, PKToken: []byte("e30:e30:c2ln:e30:c2ln"), KeyID: "seed",
		ForceCommand: "echo hi", SourceAddress: []string{"10.0.0.0/8", "::1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Type(), base64.StdEncoding.EncodeToString(r.Marshal()))
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	e, err := New(Params{Signer: ed, PKToken: []byte("e30:e30:c2ln:e30:c2ln"), KeyID: "seed"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.Type(), base64.StdEncoding.EncodeToString(e.Marshal()))
	f.Add("ssh-ed25519-cert-v01@openssh.com", "AAAAC3NzaC1lZDI1NTE5AAAAIA==")
	f.Add("ecdsa-sha2-nistp256", "")
	now := time.Unix(1764500000, 0)
	f.Fuzz(func(t *testing.T, keyType, b64 string) {
		cert, err := Parse(keyType, b64, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if cert.Type() != keyType {
			t.Fatalf("declared %q, parsed %q", keyType, cert.Type())
		}
		if cert.CertType != ssh.UserCert {
			t.Fatalf("certificate type %d, want a user certificate", cert.CertType)
		}
		if !bytes.Equal(cert.Key.Marshal(), cert.SignatureKey.Marshal()) {
			t.Fatal("accepted a certificate signed by another key")
		}
		again := base64.StdEncoding.EncodeToString(cert.Marshal())
		if again != b64 {
			t.Fatalf("re-marshals to other bytes:\n in: %s\nout: %s", b64, again)
		}
		if _, err := Parse(cert.Type(), again, now); err != nil {
			t.Fatalf("re-marshalled certificate no longer parses: %v", err)
		}
		d := Describe(cert)
		if !d.SelfSigned || d.KeyType != cert.Key.Type() || d.Fingerprint != ssh.FingerprintSHA256(cert.Key) {
			t.Fatalf("Describe: self-signed %v, key type %q, fingerprint %q", d.SelfSigned, d.KeyType, d.Fingerprint)
		}
		if pkt, err := PKToken(cert); err == nil && (len(pkt) == 0 || len(pkt) > MaxPKToken) {
			t.Fatalf("PKToken returned %d bytes", len(pkt))
		}
	})
}

// FuzzDescribeToken covers the unverified PK token reader used by inspect. Errors wrap
// ErrMalformed; what it reads from a token, written back into a fresh token, reads the same (the
// raw claims aside).
func FuzzDescribeToken(f *testing.F) {
	f.Add([]byte("e30:e30:c2ln:e30:c2ln"))
	f.Add([]byte("eyJpc3MiOiJ4IiwiYXVkIjpbImEiXSwiaWF0IjotMX0:e30:a:b:c.d"))
	f.Add([]byte(token(`{"iss":"https://op","sub":"a","email":"a@b","email_verified":true,"aud":"x","groups":["g",1],"iat":1764500000.5,"exp":2e11}`, `{"alg":"RS256"}`)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		info, err := describeToken(raw)
		if err != nil {
			if info != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v with info %+v", err, info)
			}
			return
		}
		if info.Size != len(raw) {
			t.Fatalf("size %d of a %d byte token", info.Size, len(raw))
		}
		again, err := describeToken([]byte(rewrite(t, info)))
		if err != nil {
			t.Fatalf("rewritten token: %v", err)
		}
		if info.Claims == nil {
			t.Fatal("a token that reads has no claims map")
		}
		// The rewrite carries only the fields; the raw claims are the payload as it was.
		again.Size, again.Claims = info.Size, info.Claims
		if !reflect.DeepEqual(info, again) {
			t.Fatalf("rewritten token reads differently:\n%+v\n%+v", info, again)
		}
	})
}

// token builds a compact PK token from a payload and an OP header; the signatures are dummies.
func token(payload, header string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(payload)) + ":" + enc([]byte(header)) + ":c2ln:e30:c2ln"
}

// rewrite writes what describeToken read back into a token.
func rewrite(t *testing.T, info *TokenInfo) string {
	claims := map[string]any{"iss": info.Issuer, "sub": info.Subject, "email": info.Email}
	if info.EmailVerified != nil {
		claims["email_verified"] = *info.EmailVerified
	}
	if info.Audience != nil {
		claims["aud"] = info.Audience
	}
	if info.Groups != nil {
		claims["groups"] = info.Groups
	}
	if info.IssuedAt != nil {
		claims["iat"] = info.IssuedAt.Unix()
	}
	if info.Expires != nil {
		claims["exp"] = info.Expires.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	header, err := json.Marshal(map[string]string{"alg": info.Algorithm})
	if err != nil {
		t.Fatal(err)
	}
	return token(string(payload), string(header))
}
