// Package sshsig is a codec for OpenSSH's signature format, SSHSIG (OpenSSH's PROTOCOL.sshsig),
// the format of `ssh-keygen -Y sign`: a public key (or certificate), a namespace that keeps a
// signature made for one purpose from being replayed for another, a hash algorithm, and an SSH
// signature over
//
//	"SSHSIG" || string(namespace) || string(reserved) || string(hash_alg) || string(H(message))
//
// armored between "-----BEGIN SSH SIGNATURE-----" and "-----END SSH SIGNATURE-----".
//
// Parse and Unarmor see attacker input (a signature file from anyone), so they are total: every
// length is checked, sizes are bounded, and malformed input is an error wrapping ErrMalformed,
// never a panic. Keys and signatures are decoded by golang.org/x/crypto/ssh.
//
// Sign produces the bytes `ssh-keygen -Y sign` produces for the same key, namespace and message
// (with Ed25519, whose signatures are deterministic, the files are identical). Verify checks only
// the signature; who the key belongs to is the caller's question (for opkssh, the PK token in the
// certificate, see internal/signing).
package sshsig

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Format constants from PROTOCOL.sshsig.
const (
	Magic   = "SSHSIG"
	Version = 1

	HashSHA256 = "sha256"
	HashSHA512 = "sha512" // what ssh-keygen uses by default

	beginArmor = "-----BEGIN SSH SIGNATURE-----"
	endArmor   = "-----END SSH SIGNATURE-----"
	armorWidth = 70
)

// Size limits for attacker input. An opkssh certificate with a GQ-signed PK token is below 10 KB;
// a signature blob of 128 KiB leaves room for any honest certificate.
const (
	MaxBlob      = 128 << 10
	MaxArmored   = MaxBlob*4/3 + 4096
	maxNamespace = 256
)

// ErrMalformed is wrapped by every error about the bytes of a signature.
var ErrMalformed = errors.New("malformed SSH signature")

// ErrVerify is wrapped by every error of Verify about a well-formed signature that does not hold.
var ErrVerify = errors.New("SSH signature does not verify")

// Signature is a parsed SSHSIG blob.
type Signature struct {
	PublicKey ssh.PublicKey // the signing key, or a certificate (*ssh.Certificate) of it
	Namespace string
	Reserved  []byte // empty in every signature OpenSSH makes; covered by the signature
	HashAlg   string // HashSHA256 or HashSHA512
	Signature *ssh.Signature
}

// Marshal returns the binary SSHSIG blob.
func (s *Signature) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	binary.Write(&b, binary.BigEndian, uint32(Version))
	writeString(&b, s.PublicKey.Marshal())
	writeString(&b, []byte(s.Namespace))
	writeString(&b, s.Reserved)
	writeString(&b, []byte(s.HashAlg))
	writeString(&b, ssh.Marshal(s.Signature))
	return b.Bytes()
}

// Parse decodes a binary SSHSIG blob. Trailing bytes are an error.
func Parse(blob []byte) (*Signature, error) {
	if len(blob) > MaxBlob {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d byte limit", ErrMalformed, len(blob), MaxBlob)
	}
	rest, ok := bytes.CutPrefix(blob, []byte(Magic))
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %q", ErrMalformed, Magic)
	}
	if len(rest) < 4 {
		return nil, fmt.Errorf("%w: truncated version", ErrMalformed)
	}
	if v := binary.BigEndian.Uint32(rest); v != Version {
		return nil, fmt.Errorf("%w: version %d, only %d is defined", ErrMalformed, v, Version)
	}
	rest = rest[4:]
	var fields [5][]byte
	names := [5]string{"public key", "namespace", "reserved", "hash algorithm", "signature"}
	for i := range fields {
		var err error
		if fields[i], rest, err = readString(rest); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, names[i], err)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the signature", ErrMalformed, len(rest))
	}
	pub, err := ssh.ParsePublicKey(fields[0])
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	ns := string(fields[1])
	if err := checkNamespace(ns); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	alg := string(fields[3])
	if alg != HashSHA256 && alg != HashSHA512 {
		return nil, fmt.Errorf("%w: hash algorithm %q is neither %s nor %s", ErrMalformed, clip(alg), HashSHA256, HashSHA512)
	}
	sig, err := parseSSHSignature(fields[4])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return &Signature{PublicKey: pub, Namespace: ns, Reserved: fields[2], HashAlg: alg, Signature: sig}, nil
}

// parseSSHSignature reads an RFC 4253 signature (string format, string blob) and nothing more.
func parseSSHSignature(b []byte) (*ssh.Signature, error) {
	format, rest, err := readString(b)
	if err != nil {
		return nil, err
	}
	blob, rest, err := readString(rest)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the signature blob", len(rest))
	}
	if len(format) == 0 {
		return nil, errors.New("empty signature format")
	}
	return &ssh.Signature{Format: string(format), Blob: blob}, nil
}

// checkNamespace enforces what ssh-keygen requires of a namespace: not empty. We also bound its
// length and keep it printable, since it is shown to users.
func checkNamespace(ns string) error {
	if ns == "" {
		return errors.New("empty namespace")
	}
	if len(ns) > maxNamespace {
		return fmt.Errorf("namespace of %d bytes exceeds %d", len(ns), maxNamespace)
	}
	for _, r := range ns {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("namespace %q has a character outside printable ASCII", clip(ns))
		}
	}
	return nil
}

// Armor returns the PEM-like text form ssh-keygen writes: base64 wrapped at 70 columns.
func Armor(blob []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	b.WriteString(beginArmor + "\n")
	for len(enc) > armorWidth {
		b.WriteString(enc[:armorWidth] + "\n")
		enc = enc[armorWidth:]
	}
	b.WriteString(enc + "\n")
	b.WriteString(endArmor + "\n")
	return []byte(b.String())
}

// Unarmor extracts the blob from the armored form. As ssh-keygen does, it tolerates text around
// the armor, CRLF line ends and any line width, but not a second signature or a broken base64.
func Unarmor(data []byte) ([]byte, error) {
	if len(data) > MaxArmored {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d byte limit", ErrMalformed, len(data), MaxArmored)
	}
	s := string(data)
	start := strings.Index(s, beginArmor)
	if start < 0 {
		return nil, fmt.Errorf("%w: no %q line (is this an SSH signature file?)", ErrMalformed, beginArmor)
	}
	s = s[start+len(beginArmor):]
	end := strings.Index(s, endArmor)
	if end < 0 {
		return nil, fmt.Errorf("%w: no %q line", ErrMalformed, endArmor)
	}
	body, after := s[:end], s[end+len(endArmor):]
	if strings.Contains(after, beginArmor) {
		return nil, fmt.Errorf("%w: more than one signature", ErrMalformed)
	}
	var enc strings.Builder
	for _, line := range strings.Split(body, "\n") {
		enc.WriteString(strings.TrimSpace(line))
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(enc.String())
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	return blob, nil
}

// ParseArmored is Unarmor followed by Parse.
func ParseArmored(data []byte) (*Signature, error) {
	blob, err := Unarmor(data)
	if err != nil {
		return nil, err
	}
	return Parse(blob)
}

// signedData is what the SSH signature covers.
func signedData(namespace string, reserved []byte, hashAlg string, digest []byte) []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	writeString(&b, []byte(namespace))
	writeString(&b, reserved)
	writeString(&b, []byte(hashAlg))
	writeString(&b, digest)
	return b.Bytes()
}

func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case HashSHA256:
		return sha256.New(), nil
	case HashSHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported hash algorithm %q", clip(alg))
}

// Digest hashes message with alg (HashSHA256 or HashSHA512).
func Digest(alg string, message io.Reader) ([]byte, error) {
	h, err := newHash(alg)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, message); err != nil {
		return nil, fmt.Errorf("reading the message: %w", err)
	}
	return h.Sum(nil), nil
}

// Sign signs message under namespace with signer, embedding pub in the signature: pub is the
// signer's public key or a certificate of it (as `ssh-keygen -Y sign -f KEY-cert.pub` embeds the
// certificate). RSA keys sign with rsa-sha2-512, as ssh-keygen does.
func Sign(rand io.Reader, signer ssh.Signer, pub ssh.PublicKey, namespace string, message io.Reader) (*Signature, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, err
	}
	if pub == nil {
		pub = signer.PublicKey()
	}
	if !bytes.Equal(underlyingKey(pub).Marshal(), signer.PublicKey().Marshal()) {
		return nil, errors.New("sshsig: the embedded key is not the signer's")
	}
	digest, err := Digest(HashSHA512, message)
	if err != nil {
		return nil, err
	}
	data := signedData(namespace, nil, HashSHA512, digest)
	var sig *ssh.Signature
	if signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return nil, errors.New("sshsig: the RSA signer cannot sign with rsa-sha2-512")
		}
		sig, err = as.SignWithAlgorithm(rand, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(rand, data)
	}
	if err != nil {
		return nil, fmt.Errorf("sshsig: signing: %w", err)
	}
	return &Signature{PublicKey: pub, Namespace: namespace, HashAlg: HashSHA512, Signature: sig}, nil
}

// Verify checks that s is a signature over message under namespace by the key s embeds (for a
// certificate, the certified key). It says nothing about whom the key belongs to.
func (s *Signature) Verify(message io.Reader, namespace string) error {
	if s.Namespace != namespace {
		return fmt.Errorf("%w: made for namespace %q, not %q", ErrVerify, clip(s.Namespace), clip(namespace))
	}
	digest, err := Digest(s.HashAlg, message)
	if err != nil {
		return err
	}
	return s.VerifyDigest(digest)
}

// VerifyDigest is Verify for a message already hashed with s.HashAlg; the namespace is not
// compared.
func (s *Signature) VerifyDigest(digest []byte) error {
	key := underlyingKey(s.PublicKey)
	if err := checkSignatureFormat(key.Type(), s.Signature.Format); err != nil {
		return fmt.Errorf("%w: %v", ErrVerify, err)
	}
	if err := key.Verify(signedData(s.Namespace, s.Reserved, s.HashAlg, digest), s.Signature); err != nil {
		return fmt.Errorf("%w: the %s signature does not match the message (tampered, or signed by another key)", ErrVerify, key.Type())
	}
	return nil
}

// checkSignatureFormat refuses RSA signatures with SHA-1 (ssh-rsa), as ssh-keygen does for SSHSIG.
func checkSignatureFormat(keyType, format string) error {
	if keyType == ssh.KeyAlgoRSA && format != ssh.KeyAlgoRSASHA512 && format != ssh.KeyAlgoRSASHA256 {
		return fmt.Errorf("RSA signature format %q is not accepted (rsa-sha2-512 or rsa-sha2-256 only)", clip(format))
	}
	return nil
}

// underlyingKey returns the certified key of a certificate, or pub itself.
func underlyingKey(pub ssh.PublicKey) ssh.PublicKey {
	if c, ok := pub.(*ssh.Certificate); ok {
		return c.Key
	}
	return pub
}

func writeString(b *bytes.Buffer, s []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}

func readString(b []byte) (s, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated length")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b)-4)
	}
	return b[4 : 4+n], b[4+n:], nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
