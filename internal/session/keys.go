package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// Keys is where opkssh keeps a user's keys: the directory ssh reads default keys from. Every
// command that looks for opkssh's files asks it, so that the places are named once.
type Keys struct {
	Dir string // ~/.ssh
}

// ErrNoHome means the user's home directory, and so ~/.ssh, is unknown; the caller can still
// name a key file.
var ErrNoHome = errors.New("cannot find your home directory")

// UserKeys is the current user's ~/.ssh.
func UserKeys() (Keys, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Keys{}, fmt.Errorf("%w (%v)", ErrNoHome, err)
	}
	return Keys{Dir: filepath.Join(home, ".ssh")}, nil
}

// SSHConfig is the user's ssh configuration file, where "opkssh ssh-config --install" puts the
// block that runs "login --if-needed".
func (k Keys) SSHConfig() string { return filepath.Join(k.Dir, "config") }

// KeyPath is the file login writes a key of type t to by default.
func (k Keys) KeyPath(t KeyType) string { return filepath.Join(k.Dir, t.FileName()) }

// KeyPaths are the private keys opkssh may have written by default, in KeyTypes order.
func (k Keys) KeyPaths() []string {
	var paths []string
	for _, t := range KeyTypes() {
		paths = append(paths, k.KeyPath(t))
	}
	return paths
}

// KnownKey is a key file opkssh may have written: a default one, or one the record names.
type KnownKey struct {
	Path string
	Type KeyType
}

// Known are the key files opkssh may have written for this user: the default ones in KeyTypes
// order, then those of the record (see record.go), the most recent first.
func (k Keys) Known() ([]KnownKey, error) {
	var known []KnownKey
	seen := map[string]bool{}
	for _, t := range KeyTypes() {
		known = append(known, KnownKey{Path: k.KeyPath(t), Type: t})
		seen[k.KeyPath(t)] = true
	}
	recorded, err := k.Recorded()
	if err != nil {
		return nil, err
	}
	for _, e := range recorded {
		if !seen[e.Key] {
			seen[e.Key] = true
			known = append(known, KnownKey{Path: e.Key, Type: e.Type})
		}
	}
	return known, nil
}

// KeyPaths is keyFile if the user named one, else every key file opkssh may have written for
// the current user (Keys.Known): the default ones and those login noted in the record. status and
// logout ask it; login writes only through Login.Save, which keeps the record.
func KeyPaths(keyFile string) ([]string, error) {
	if keyFile != "" {
		return []string{keyFile}, nil
	}
	k, err := UserKeys()
	if err != nil {
		return nil, err
	}
	known, err := k.Known()
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(known))
	for i, kk := range known {
		paths[i] = kk.Path
	}
	return paths, nil
}

// LoginKeyPath is where a login of type t writes its key: keyFile if given, else the default.
func LoginKeyPath(keyFile string, t KeyType) (string, error) {
	if keyFile != "" {
		return keyFile, nil
	}
	k, err := UserKeys()
	if err != nil {
		return "", err
	}
	return k.KeyPath(t), nil
}

// CertPaths are the certificates of keyPaths.
func CertPaths(keyPaths []string) []string {
	certs := make([]string, len(keyPaths))
	for i, p := range keyPaths {
		certs[i] = sshcert.CertPath(p)
	}
	return certs
}

// FirstCert is the first default certificate file that exists, in KeyTypes order. It fails when
// there is none.
func (k Keys) FirstCert() (string, error) {
	for _, p := range CertPaths(k.KeyPaths()) {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no certificate in %s (%s or %s)", k.Dir, filepath.Base(sshcert.CertPath(ECDSA.FileName())), filepath.Base(sshcert.CertPath(Ed25519.FileName())))
}
