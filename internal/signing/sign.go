// Package signing signs and verifies files, git objects and other messages with the opkssh key:
// an SSHSIG signature (internal/sshsig) embedding the opkssh certificate, whose PK token says who
// held the key, as vouched for by their OpenID Provider.
//
// A signature is accepted when all of these hold: it parses; it was made for the namespace the
// verifier asks for; it embeds an OpenPubkey certificate (a plain key says nothing about anyone);
// the signature over the message verifies with the certificate's key; the PK token in the
// certificate verifies against a trusted provider (the OP's signature with the provider's keys,
// audience, the commitment to exactly this key; verifier.VerifyCertToken); the signature's time,
// when one is claimed, falls in the certificate's validity and the provider's expiration rule;
// and, when a policy asks for it, the identity is an accepted signer. Nothing here needs the
// signer's key in advance: the identity travels with the signature. docs/signing.md says what a
// signature does and does not prove.
package signing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/sshsig"
)

// DefaultNamespace is the namespace of `opkssh sign` without -n (as ssh-keygen users name file
// signatures).
const DefaultNamespace = "file"

// Key is an opkssh private key with its certificate.
type Key struct {
	Path   string
	Signer ssh.Signer
	Cert   *ssh.Certificate
}

// LoadKey reads the private key at keyPath and the certificate beside it (keyPath-cert.pub), and
// checks that the certificate is an OpenPubkey certificate of that key, valid at now.
func LoadKey(keyPath string, now time.Time) (*Key, error) {
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading the private key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", keyPath, err)
	}
	cert, err := sshcert.ReadCertFile(sshcert.CertPath(keyPath))
	if err != nil {
		return nil, fmt.Errorf("reading the certificate of %s: %w (run opkssh login)", keyPath, err)
	}
	if _, err := sshcert.PKToken(cert); err != nil {
		return nil, fmt.Errorf("%s: %w", sshcert.CertPath(keyPath), err)
	}
	if string(cert.Key.Marshal()) != string(signer.PublicKey().Marshal()) {
		return nil, fmt.Errorf("%s certifies another key than %s (run opkssh login)", sshcert.CertPath(keyPath), keyPath)
	}
	u := now.Unix()
	if u < int64(min(cert.ValidAfter, 1<<62)) {
		return nil, fmt.Errorf("the certificate %s is not valid before %s", sshcert.CertPath(keyPath), time.Unix(int64(cert.ValidAfter), 0).UTC().Format(time.RFC3339))
	}
	if cert.ValidBefore != ssh.CertTimeInfinity && uint64(u) >= cert.ValidBefore {
		return nil, fmt.Errorf("the certificate %s expired at %s; run opkssh login to get a new one", sshcert.CertPath(keyPath), time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339))
	}
	return &Key{Path: keyPath, Signer: signer, Cert: cert}, nil
}

// Sign signs message under namespace with k, embedding k's certificate, and returns the armored
// signature (what `ssh-keygen -Y sign -f KEY-cert.pub` writes).
func Sign(k *Key, namespace string, message io.Reader) ([]byte, error) {
	if k == nil {
		return nil, errors.New("no key")
	}
	s, err := sshsig.Sign(rand.Reader, k.Signer, k.Cert, namespace, message)
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(s.Marshal()), nil
}
