// Package session is the workstation's side of opkssh: the login that "opkssh login" makes and the
// other client commands (status, logout, inspect, ssh-config's "login --if-needed", the ssh-agent
// code) look at. It knows
//
//   - which keys opkssh makes (KeyType, NewKey) and where it keeps them (Keys: ~/.ssh/id_ecdsa and
//     ~/.ssh/id_ed25519 unless the user names another file), with the record of every key login
//     wrote (record.go: ~/.ssh/opkssh-logins.json, kept by Login.Save), so that a --key-file
//     login is found without the flag;
//   - the current login (FindCurrent, current.go): the one notion of "am I logged in, and where"
//     that status, "login --if-needed", inspect and ssh-config share, over the key files and the
//     ssh-agent, and where its renewal goes;
//   - the certificate a login issues (Issue): its validity window (sshcert.Window), its key ID and
//     its restrictions;
//   - the renewal without a browser (Renew): the refresh token kept beside the key, its rotation,
//     the PK token reassembled with the refreshed ID token, and the certificate reissued;
//   - which files are opkssh's (Remove, and sshcert.OwnedByOpkssh underneath): a key opkssh did not
//     create is never replaced nor removed;
//   - the state of given certificates (Status, AgentStatus) and the lock that lets one "login --if-needed"
//     of a key run at a time (Lock).
//
// The commands translate flags into these calls and print the results; they hold no key path,
// validity or refresh logic of their own. Nothing here prints: results come back as values, and
// what the user should read is the caller's business.
package session

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/opkssh-team/opkssh/internal/sshagent"
)

// KeyType is a kind of key opkssh makes.
type KeyType string

// The key types: ECDSA on P-256 (the default) and Ed25519.
const (
	ECDSA   KeyType = "ecdsa"
	Ed25519 KeyType = "ed25519"
)

// KeyTypes are the types opkssh makes, in the order it looks for their default files.
func KeyTypes() []KeyType { return []KeyType{ECDSA, Ed25519} }

// ParseKeyType reads a key type as the user writes it ("ecdsa", "p256", "ed25519", any case).
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(s) {
	case "ecdsa", "ecdsa-p256", "p256":
		return ECDSA, nil
	case "ed25519":
		return Ed25519, nil
	default:
		return "", fmt.Errorf("--key-type %q is not supported: use ecdsa (default) or ed25519", s)
	}
}

// FileName is the file in ~/.ssh where ssh looks for a key of this type.
func (t KeyType) FileName() string {
	if t == Ed25519 {
		return "id_ed25519"
	}
	return "id_ecdsa"
}

// TypeOf is the type of a key NewKey made (or of its public half).
func TypeOf(key any) KeyType {
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	if _, ok := key.(ed25519.PublicKey); ok {
		return Ed25519
	}
	return ECDSA
}

// NewKey makes a fresh key pair of type t and returns it with its JOSE algorithm.
func NewKey(t KeyType) (crypto.Signer, string, error) {
	if t == Ed25519 {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, "EdDSA", err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k, "ES256", err
}

// Comment is the comment opkssh gives the key files and agent identities of identity's login; it
// is how opkssh recognises them later (sshcert.OpksshKeyIdentity, sshagent.IsOpkssh).
func Comment(identity string) string { return sshagent.CommentPrefix + identity }
