package sshcert

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// KeyCommentPrefix starts the comment opkssh writes into its private keys (and its agent
// identities): "opkssh:" followed by the identity.
const KeyCommentPrefix = "opkssh:"

// maxKeyFile bounds what is read of a private key file: opkssh's keys are well under 1 KiB.
const maxKeyFile = 64 << 10

// OpksshKeyIdentity reports whether the file at keyPath is a private key opkssh wrote, judged by
// its comment, and returns the identity in that comment. Only a regular file holding an
// unencrypted OpenSSH key of a type opkssh makes (ECDSA P-256, Ed25519) can qualify: opkssh never
// encrypts its keys. A public key file beside it (keyPath.pub, which opkssh never writes) means
// someone has been using the key as their own: then it is not opkssh's any more.
func OpksshKeyIdentity(keyPath string) (string, bool) {
	if fi, err := os.Lstat(keyPath); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	if _, err := os.Lstat(keyPath + ".pub"); !errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	f, err := os.Open(keyPath)
	if err != nil {
		return "", false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil || len(data) > maxKeyFile {
		return "", false
	}
	comment, ok := keyComment(data)
	if !ok || !strings.HasPrefix(comment, KeyCommentPrefix) {
		return "", false
	}
	return strings.TrimPrefix(comment, KeyCommentPrefix), true
}

// keyComment returns the comment of an unencrypted OpenSSH private key ("openssh-key-v1", see
// OpenSSH's PROTOCOL.key) holding one ECDSA P-256 or Ed25519 key. Anything else, including a
// truncated or encrypted key, is reported as having none.
func keyComment(pemData []byte) (string, bool) {
	block, _ := pem.Decode(pemData)
	if block == nil || block.Type != "OPENSSH PRIVATE KEY" {
		return "", false
	}
	const magic = "openssh-key-v1\x00"
	if !bytes.HasPrefix(block.Bytes, []byte(magic)) {
		return "", false
	}
	s := cryptobyte.String(block.Bytes[len(magic):])
	var cipher, kdf, kdfOptions, public, private cryptobyte.String
	var keys uint32
	if !readString(&s, &cipher) || string(cipher) != "none" ||
		!readString(&s, &kdf) || string(kdf) != "none" ||
		!readString(&s, &kdfOptions) ||
		!s.ReadUint32(&keys) || keys != 1 ||
		!readString(&s, &public) ||
		!readString(&s, &private) {
		return "", false
	}
	var check1, check2 uint32
	var keyType cryptobyte.String
	if !private.ReadUint32(&check1) || !private.ReadUint32(&check2) || check1 != check2 ||
		!readString(&private, &keyType) {
		return "", false
	}
	// The key's own fields come before the comment: curve, public point and scalar for ECDSA;
	// public and private key for Ed25519.
	var fields int
	switch string(keyType) {
	case "ecdsa-sha2-nistp256":
		fields = 3
	case "ssh-ed25519":
		fields = 2
	default:
		return "", false
	}
	for i := 0; i < fields; i++ {
		var field cryptobyte.String
		if !readString(&private, &field) {
			return "", false
		}
	}
	var comment cryptobyte.String
	if !readString(&private, &comment) {
		return "", false
	}
	return string(comment), true
}

// readString reads one uint32-length-prefixed string (RFC 4251's "string").
func readString(s, out *cryptobyte.String) bool {
	var n uint32
	return s.ReadUint32(&n) && s.ReadBytes((*[]byte)(out), int(n))
}
