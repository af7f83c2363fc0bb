// Package logintest produces real and forged OpenPubkey SSH certificates for tests: a real login
// against the test OP (the same provider.Login code path the CLI uses, with testop.Browse as the
// browser), or a PK token minted with the test OP's own signing key for claims an honest OP would
// never issue (expired, wrong audience, bad nonce…).
package logintest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"time"

	"github.com/openpubkey/openpubkey/pktoken"
	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

// Credential is a key with its certificate, as `opkssh login` would write them.
type Credential struct {
	Signer  crypto.Signer
	PKToken []byte // compact
	Cert    *ssh.Certificate
	CertB64 string // sshd's %k
	Type    string // sshd's %t
}

// NewKey returns a fresh key of type "ecdsa" or "ed25519" and its JOSE algorithm.
func NewKey(keyType string) (crypto.Signer, string) {
	if keyType == "ed25519" {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k, "EdDSA"
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k, "ES256"
}

// Login runs the browser login against op as user (subject or email) with the client "opkssh".
func Login(ctx context.Context, op *testop.Server, user, keyType string) (*Credential, error) {
	signer, alg := NewKey(keyType)
	redirect, err := FreeRedirectURI()
	if err != nil {
		return nil, err
	}
	res, err := provider.Login(ctx, provider.Config{
		Issuer: op.Issuer(), ClientID: "opkssh", Scopes: provider.DefaultScopes(), RedirectURIs: []string{redirect},
	}, provider.LoginOptions{
		Signer: signer, Alg: alg,
		OpenBrowser: func(u string) error {
			go testop.Browse(ctx, u, user, "password")
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	compact, err := res.PKToken.Compact()
	if err != nil {
		return nil, err
	}
	return Wrap(signer, compact, res.Claims.IssuedAt.Add(-time.Minute), res.Claims.IssuedAt.Add(24*time.Hour))
}

// Forge mints a PK token for claims, signed with op's current key and committing to signer. A
// "nonce" in claims is kept as given (to test a broken commitment); otherwise the correct one is set.
func Forge(op *testop.Server, signer crypto.Signer, alg string, claims map[string]any) ([]byte, error) {
	cic, nonce, err := provider.NewClientInstance(signer, alg)
	if err != nil {
		return nil, err
	}
	c := map[string]any{}
	for k, v := range claims {
		c[k] = v
	}
	if _, ok := c["nonce"]; !ok {
		c["nonce"] = nonce
	}
	idt, err := op.SignIDToken(c)
	if err != nil {
		return nil, err
	}
	cicToken, err := cic.Sign(signer, alg, []byte(idt))
	if err != nil {
		return nil, err
	}
	pkt, err := pktoken.New([]byte(idt), cicToken)
	if err != nil {
		return nil, err
	}
	return pkt.Compact()
}

// Claims returns the claims an honest login of user at op would carry, issued at iat.
func Claims(op *testop.Server, sub, email string, iat time.Time) map[string]any {
	return map[string]any{
		"iss": op.Issuer(), "sub": sub, "aud": "opkssh", "email": email, "email_verified": true,
		"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
	}
}

// Wrap packs a compact PK token into a certificate self-signed by signer.
func Wrap(signer crypto.Signer, compact []byte, validAfter, validBefore time.Time) (*Credential, error) {
	cert, err := sshcert.New(sshcert.Params{Signer: signer, PKToken: compact, KeyID: "test", ValidAfter: validAfter, ValidBefore: validBefore})
	if err != nil {
		return nil, err
	}
	return &Credential{Signer: signer, PKToken: compact, Cert: cert, CertB64: base64.StdEncoding.EncodeToString(cert.Marshal()), Type: cert.Type()}, nil
}

// FreeRedirectURI returns a loopback redirect URI on a port that was free a moment ago.
func FreeRedirectURI() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return fmt.Sprintf("http://127.0.0.1:%d/login-callback", port), nil
}
