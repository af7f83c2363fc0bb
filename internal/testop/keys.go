package testop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// signingKey is one key of the OP's JWKS.
type signingKey struct {
	kid    string // RFC 7638 thumbprint of the public key
	alg    jwa.SignatureAlgorithm
	signer crypto.Signer
	public jwk.Key // with kid, alg and use=sig, as published
}

// Algs are the signing algorithms Options.Alg may name.
var Algs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func newSigningKey(alg jwa.SignatureAlgorithm) (*signingKey, error) {
	var signer crypto.Signer
	var err error
	switch alg {
	case jwa.RS256(), jwa.RS384(), jwa.RS512(), jwa.PS256(), jwa.PS384(), jwa.PS512():
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case jwa.ES256():
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.ES384():
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jwa.ES512():
		signer, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jwa.EdDSA():
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("unsupported algorithm %s", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("testop: generating %s key: %w", alg, err)
	}
	pub, err := jwk.Import(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("testop: importing public key: %w", err)
	}
	if err := jwk.AssignKeyID(pub); err != nil {
		return nil, fmt.Errorf("testop: computing key id: %w", err)
	}
	if err := pub.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, fmt.Errorf("testop: setting alg: %w", err)
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, fmt.Errorf("testop: setting use: %w", err)
	}
	kid, _ := pub.KeyID()
	return &signingKey{kid: kid, alg: alg, signer: signer, public: pub}, nil
}

// generateKeys makes n keys concurrently: RSA key generation dominates the
// start-up time of the OP, and tests start many OPs.
func generateKeys(alg jwa.SignatureAlgorithm, n int) ([]*signingKey, error) {
	keys := make([]*signingKey, n)
	errs := make([]error, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			keys[i], errs[i] = newSigningKey(alg)
		}()
	}
	for range n {
		<-done
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// RotateKeys generates a new key that signs from now on. Previous keys stay
// in the JWKS, so tokens they signed still verify, except the oldest ones
// beyond Options.Keys, which are dropped.
func (s *Server) RotateKeys() {
	k, err := newSigningKey(s.alg)
	if err != nil {
		// Key generation only fails if the system's randomness does, and a
		// test cannot continue meaningfully then.
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	if extra := len(s.keys) - s.nkeys; extra > 0 {
		s.keys = s.keys[extra:]
	}
}

// jwksJSON returns the public JWKS: the foreign keys of Quirks.ForeignJWKs, if any, then the
// OP's keys, newest first. The foreign keys are kept as JSON because jwk.Set refuses key
// types it does not know, which is the point of them.
func (s *Server) jwksJSON() ([]byte, error) {
	s.mu.Lock()
	keys := make([]jwk.Key, 0, len(s.keys))
	for i := len(s.keys) - 1; i >= 0; i-- {
		keys = append(keys, s.keys[i].public)
	}
	s.mu.Unlock()

	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	set.Keys = append(set.Keys, s.foreign...)
	for _, k := range keys {
		b, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, b)
	}
	return json.Marshal(set)
}

// signClaims serializes claims as the JWS payload and signs it, with the key's kid in the
// header unless noKID.
func (k *signingKey) signClaims(claims map[string]any, noKID bool) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("testop: encoding claims: %w", err)
	}
	hdr := jws.NewHeaders()
	if !noKID {
		if err := hdr.Set(jws.KeyIDKey, k.kid); err != nil {
			return "", err
		}
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	token, err := jws.Sign(payload, jws.WithKey(k.alg, k.signer, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("testop: signing: %w", err)
	}
	return string(token), nil
}
