package sshcert

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// hugeRSA is a public key no one holds the private half of: a random odd modulus of bits bits.
func hugeRSA(t *testing.T, bits, e int) ssh.PublicKey {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	pub, err := ssh.NewPublicKey(&rsa.PublicKey{N: n, E: e})
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// forgedCert is a certificate for key that claims to be signed by it, with a signature of junk:
// what an attacker without any private key sends to make verify spend CPU.
func forgedCert(t *testing.T, key ssh.PublicKey) (string, string) {
	t.Helper()
	sig := make([]byte, 2048)
	rand.Read(sig)
	c := &ssh.Certificate{Key: key, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity,
		SignatureKey: key, Signature: &ssh.Signature{Format: ssh.KeyAlgoRSASHA256, Blob: sig}}
	return c.Type(), base64.StdEncoding.EncodeToString(c.Marshal())
}

func TestParseRefusesHugeRSAKeysBeforeTheSignature(t *testing.T) {
	for _, tc := range []struct {
		bits, e int
		want    string
	}{
		{64 << 10, 65537, "modulus too large"}, // x/crypto/ssh refuses it first
		{16384, 65537, "RSA key of 16384 bits"},
		{1024, 65537, "RSA key of 1024 bits"},
		{4096, 3, "RSA exponent 3"},
		{4096, 1<<24 - 1, "RSA exponent"},
	} {
		typ, b64 := forgedCert(t, hugeRSA(t, tc.bits, tc.e))
		start := time.Now()
		_, err := Parse(typ, b64, time.Now())
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("%d-bit key: refusing took %s", tc.bits, d)
		}
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d bits, e=%d: %v, want %q", tc.bits, tc.e, err, tc.want)
		}
	}
}

func TestCheckKeyBoundsAccepts(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	keys := []any{&rsaKey.PublicKey, edPub}
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		keys = append(keys, &k.PublicKey)
	}
	for _, k := range keys {
		pub, err := ssh.NewPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckKeyBounds(pub); err != nil {
			t.Errorf("%s refused: %v", pub.Type(), err)
		}
	}
}
