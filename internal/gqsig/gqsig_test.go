package gqsig

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	opkgq "github.com/openpubkey/openpubkey/gq"
)

func rsaToken(t testing.TB, kid string) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewBuilder().Issuer("https://token.actions.githubusercontent.com").Subject("repo:acme/app:ref:refs/heads/main").
		Audience([]string{"commitment"}).Claim("repository", "acme/app").Build()
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, kid)
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return key, signed
}

func TestOursVerifiesWithOpenPubkey(t *testing.T) {
	key, idt := rsaToken(t, "k1")
	gqt, err := SignJWT(&key.PublicKey, idt, map[string]string{"cic": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := opkgq.GQ256VerifyJWT(&key.PublicKey, gqt)
	if err != nil || !ok {
		t.Fatalf("openpubkey's gq rejects our GQ256 token: %v %v", ok, err)
	}
	tok, err := Parse(gqt)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Verify(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	if tok.OriginalKeyID() != "k1" || tok.HeaderString("cic") != "abc" {
		t.Fatalf("kid %q cic %q", tok.OriginalKeyID(), tok.HeaderString("cic"))
	}
	if strings.Contains(string(gqt), strings.Split(string(idt), ".")[2]) {
		t.Fatal("the RSA signature travels in the GQ token")
	}
}

func TestOpenPubkeyVerifiesWithOurs(t *testing.T) {
	key, idt := rsaToken(t, "k2")
	gqt, err := opkgq.GQ256SignJWT(&key.PublicKey, idt, opkgq.WithExtraClaim("cic", "xyz"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(gqt)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Verify(&key.PublicKey); err != nil {
		t.Fatalf("our verifier rejects openpubkey's GQ256 token: %v", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if tok.Verify(&other.PublicKey) == nil {
		t.Fatal("verifies under another OP key")
	}
}

func TestTampering(t *testing.T) {
	key, idt := rsaToken(t, "k3")
	gqt, err := SignJWT(&key.PublicKey, idt, map[string]string{"cic": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(gqt), ".")
	// Another cic in the GQ header: the proof covers the header.
	tok, _ := Parse(gqt)
	tok.Header["cic"] = "other"
	hdr := jws.NewHeaders()
	for k, v := range tok.Header {
		hdr.Set(k, v)
	}
	tampered := map[string]string{
		"payload": parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"x","sub":"y"}`)) + "." + parts[2],
		"proof":   parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 16*2+16*256)),
	}
	for name, s := range tampered {
		tk, err := Parse([]byte(s))
		if err != nil {
			continue
		}
		if tk.Verify(&key.PublicKey) == nil {
			t.Errorf("%s: tampered token verifies", name)
		}
	}
	// Re-signing over another cic needs the RSA signature, which only the ID token holder has.
	gqt2, err := SignJWT(&key.PublicKey, idt, map[string]string{"cic": "other"})
	if err != nil {
		t.Fatal(err)
	}
	p2 := strings.Split(string(gqt2), ".")
	mixed := p2[0] + "." + parts[1] + "." + parts[2]
	if tk, err := Parse([]byte(mixed)); err == nil && tk.Verify(&key.PublicKey) == nil {
		t.Error("a proof made under one GQ header verifies under another")
	}
}

func TestSignRefuses(t *testing.T) {
	key, idt := rsaToken(t, "k4")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := SignJWT(&other.PublicKey, idt, nil); err == nil {
		t.Error("signs with a key the token does not verify under")
	}
	if _, err := SignJWT(&key.PublicKey, idt, map[string]string{"kid": "x"}); err == nil {
		t.Error("lets extra headers set kid")
	}
}

func FuzzParse(f *testing.F) {
	key, idt := rsaToken(f, "kf")
	gqt, err := SignJWT(&key.PublicKey, idt, map[string]string{"cic": "abc"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gqt)
	f.Add(idt)
	f.Add([]byte("a.b.c"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		_ = tok.OriginalKeyID()
		_ = tok.Payload()
		_ = tok.Verify(&key.PublicKey)
	})
}

func BenchmarkVerify(b *testing.B) {
	key, idt := rsaToken(b, "kb")
	gqt, err := SignJWT(&key.PublicKey, idt, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tok, err := Parse(gqt)
		if err != nil || tok.Verify(&key.PublicKey) != nil {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkOpenPubkeyVerify(b *testing.B) {
	key, idt := rsaToken(b, "kb")
	gqt, err := SignJWT(&key.PublicKey, idt, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := opkgq.GQ256VerifyJWT(&key.PublicKey, gqt); !ok || err != nil {
			b.Fatal("does not verify")
		}
	}
}
