package sshcert

import (
	"bytes"
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
)

// ErrForeignKey means a private key exists at the target path and opkssh did not create it.
var ErrForeignKey = errors.New("a private key that opkssh did not create is in the way")

// CertPath is where ssh looks for the certificate of the private key at keyPath.
func CertPath(keyPath string) string { return keyPath + "-cert.pub" }

// WriteKeyPair writes the private key (0600) and its certificate (0644) next to it. An existing
// private key is replaced only if opkssh made it (see OwnedByOpkssh: the OpenPubkey certificate
// beside it, or with none, the key's own "opkssh:" comment); anything else is left alone and
// ErrForeignKey returned. Each file is written to a
// temporary file, synced and renamed, so a crash leaves either the old or the new file, never a
// truncated one.
func WriteKeyPair(keyPath string, key crypto.Signer, cert *ssh.Certificate, comment string) error {
	owned, err := OwnedByOpkssh(keyPath)
	if err != nil {
		return err
	}
	if !owned {
		return fmt.Errorf("%s: %w", keyPath, ErrForeignKey)
	}
	block, err := ssh.MarshalPrivateKey(key, comment)
	if err != nil {
		return fmt.Errorf("encoding private key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return err
	}
	// Certificate first: if we crash in between, the old key keeps a certificate that still
	// carries the OpenPubkey extension, so the next login may replace both.
	if err := WriteCert(keyPath, cert, comment); err != nil {
		return err
	}
	return atomicfile.Write(keyPath, pem.EncodeToMemory(block), 0o600)
}

// WriteCert replaces only the certificate (0644) of the private key at keyPath, atomically, as a
// refresh does: the key stays as it is.
func WriteCert(keyPath string, cert *ssh.Certificate, comment string) error {
	certLine := bytes.TrimRight(ssh.MarshalAuthorizedKey(cert), "\n")
	certLine = append(certLine, []byte(" "+comment+"\n")...)
	return atomicfile.Write(CertPath(keyPath), certLine, 0o644)
}

// OwnedByOpkssh reports whether keyPath is free to be written: it does not exist, the certificate
// beside it is an OpenPubkey certificate, or there is no certificate beside it and the key carries
// the comment opkssh writes (as after the user deleted the certificate). A certificate file that is
// anything else means somebody else's files: not ours.
func OwnedByOpkssh(keyPath string) (bool, error) {
	if _, err := os.Lstat(keyPath); errors.Is(err, fs.ErrNotExist) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	cert, err := ReadCertFile(CertPath(keyPath))
	if errors.Is(err, fs.ErrNotExist) {
		_, ours := OpksshKeyIdentity(keyPath)
		return ours, nil
	}
	if err != nil {
		return false, nil
	}
	_, hasPKT := cert.Permissions.Extensions[ExtensionPKToken]
	return hasPKT, nil
}

// ReadCertFile reads an OpenSSH certificate file (the "-cert.pub" format).
func ReadCertFile(path string) (*ssh.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > 2*MaxCertBase64 {
		return nil, fmt.Errorf("%s: %w: file too large", path, ErrMalformed)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return nil, fmt.Errorf("%s is a private key; the certificate is %s", path, CertPath(path))
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrMalformed, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s: %w: a plain %s public key, not a certificate", path, ErrMalformed, pub.Type())
	}
	return cert, nil
}
