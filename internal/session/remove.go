package session

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

// Removal tells what Remove did with one key's files.
type Removal struct {
	// Left are files opkssh did not create, left where they are.
	Left []string
	// RefreshToken is the refresh token file removed, "" if none was.
	RefreshToken string
	// Key and Cert are the key file and its certificate, each "" if it was not removed.
	Key, Cert string
	// Identity is whose key was removed: the certificate's identity, or, with no certificate, the
	// key's comment quoted (it is the file's text, not a verified identity).
	Identity string
}

// Removed reports whether anything was removed.
func (r Removal) Removed() bool { return r.RefreshToken != "" || r.Key != "" || r.Cert != "" }

// Remove removes the key at keyPath, its certificate and refresh token if opkssh made them. A key
// is opkssh's by the rule login applies before it overwrites one (sshcert.OwnedByOpkssh); a
// certificate without its key if it carries a PK token; a refresh token beside a key that is not
// there if it is in opkssh's format. The refresh token goes first (it lives longest), then the
// key, then the certificate: a certificate without its key is still recognised as opkssh's, and
// so is a key without its certificate if it carries opkssh's comment.
func Remove(keyPath string) (Removal, error) {
	var r Removal
	certPath := sshcert.CertPath(keyPath)
	keyExists, err := exists(keyPath)
	if err != nil {
		return r, err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return r, err
	}
	if !keyExists && !certExists {
		return r, r.removeRefreshToken(keyPath, false)
	}
	cert, _ := sshcert.ReadCertFile(certPath)
	ours := false
	if cert != nil {
		_, ours = cert.Permissions.Extensions[sshcert.ExtensionPKToken]
	}
	if keyExists {
		if ours, err = sshcert.OwnedByOpkssh(keyPath); err != nil {
			return r, err
		}
	}
	if !ours {
		left := keyPath
		if !keyExists {
			left = certPath
		}
		r.Left = append(r.Left, left)
		return r, nil
	}
	if cert != nil {
		r.Identity = certstatus.Of(cert, time.Now(), 0).Identity
	} else {
		who, _ := sshcert.OpksshKeyIdentity(keyPath)
		r.Identity = strconv.Quote(who)
	}
	if err := r.removeRefreshToken(keyPath, true); err != nil {
		return r, err
	}
	if keyExists {
		if err := os.Remove(keyPath); err != nil {
			return r, err
		}
		r.Key = keyPath
	}
	if certExists {
		if err := os.Remove(certPath); err != nil {
			return r, err
		}
		r.Cert = certPath
	}
	return r, nil
}

// removeRefreshToken removes the refresh token file of the key at keyPath, if there is one: always
// when the key pair is opkssh's (ours), else only if opkssh wrote the file.
func (r *Removal) removeRefreshToken(keyPath string, ours bool) error {
	path := provider.RefreshTokenPath(keyPath)
	if ok, err := exists(path); !ok || err != nil {
		return err
	}
	if _, err := provider.LoadRefreshToken(path); errors.Is(err, provider.ErrNotRefreshTokenFile) && !ours {
		r.Left = append(r.Left, path)
		return nil
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	r.RefreshToken = path
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
