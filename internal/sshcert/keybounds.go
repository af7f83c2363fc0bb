package sshcert

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// Bounds of the client keys a certificate may carry. Verify checks the certificate's own
// signature with its key before anything else, and sshd runs verify for every key a client
// offers, with no proof of possession yet: a huge RSA modulus or exponent would buy an
// unauthenticated caller seconds of CPU per attempt.
const (
	MinRSABits  = 2048
	MaxRSABits  = 8192
	RSAExponent = 65537
)

// CheckKeyBounds refuses a key verify would not accept as a client key: RSA outside
// MinRSABits..MaxRSABits or with an exponent other than 65537, ECDSA on a curve other than P-256,
// P-384 or P-521, and any type other than RSA, ECDSA and Ed25519. It costs no signature check.
func CheckKeyBounds(key ssh.PublicKey) error {
	cpk, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return fmt.Errorf("%w: key type %s is not accepted", ErrMalformed, key.Type())
	}
	switch k := cpk.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits; accepted are %d to %d", ErrMalformed, n, MinRSABits, MaxRSABits)
		}
		if k.E != RSAExponent {
			return fmt.Errorf("%w: RSA exponent %d; only %d is accepted", ErrMalformed, k.E, RSAExponent)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("%w: ECDSA curve %s is not accepted", ErrMalformed, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("%w: key type %s is not accepted", ErrMalformed, key.Type())
	}
	return nil
}
