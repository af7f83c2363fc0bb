package session

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

// Restrictions are the critical options a login puts in the certificate; zero fields put none.
type Restrictions struct {
	ForceCommand  string
	SourceAddress []string
}

// ParseRestrictions checks the user's --force-command and --source-address, each used only if
// the user gave it (forceSet, sourceSet). It returns nil when neither was given: a renewal then
// keeps the restrictions of the certificate it replaces.
func ParseRestrictions(forceCommand, sourceAddress string, forceSet, sourceSet bool) (*Restrictions, error) {
	if !forceSet && !sourceSet {
		return nil, nil
	}
	r := &Restrictions{}
	if forceSet {
		if strings.TrimSpace(forceCommand) == "" {
			return nil, errors.New("--force-command needs a command")
		}
		r.ForceCommand = forceCommand
	}
	if sourceSet {
		addrs, err := sshcert.ParseSourceAddress(sourceAddress)
		if err != nil {
			return nil, fmt.Errorf("--source-address: %v (want IP addresses or CIDR blocks separated by commas, e.g. 192.0.2.0/24,2001:db8::/32)", err)
		}
		r.SourceAddress = addrs
	}
	return r, nil
}

// restrictionsOf are the restrictions cert carries, which a renewal keeps.
func restrictionsOf(cert *ssh.Certificate) Restrictions {
	r := Restrictions{ForceCommand: cert.CriticalOptions[sshcert.OptionForceCommand]}
	if sa := cert.CriticalOptions[sshcert.OptionSourceAddress]; sa != "" {
		r.SourceAddress = strings.Split(sa, ",")
	}
	return r
}

// Login is a key and the certificate issued for it: what a login or a renewal produces.
type Login struct {
	Identity    string // the ID token's email, or its sub
	Issuer      string
	Key         crypto.Signer
	Cert        *ssh.Certificate
	ValidBefore time.Time
}

// Comment is the comment of the login's key files and agent identity.
func (l *Login) Comment() string { return Comment(l.Identity) }

// Issue makes the certificate of a browser or device login: key signs it, res's PK token rides in
// it, it is valid for lifetime (see sshcert.Window) from now or the token's iat, whichever is
// earlier, and it carries r (nil: no restriction).
func Issue(key crypto.Signer, res *provider.LoginResult, now time.Time, lifetime time.Duration, r *Restrictions) (*Login, error) {
	if r == nil {
		r = &Restrictions{}
	}
	compact, err := res.PKToken.Compact()
	if err != nil {
		return nil, fmt.Errorf("serializing the PK token: %w", err)
	}
	c := res.Claims
	who := c.Email
	if who == "" {
		who = c.Subject
	}
	return issue(key, compact, who, c.Issuer, c.IssuedAt, now, lifetime, *r)
}

func issue(key crypto.Signer, pkt []byte, identity, issuer string, issuedAt, now time.Time, lifetime time.Duration, r Restrictions) (*Login, error) {
	validAfter, validBefore := sshcert.Window(now, issuedAt, lifetime)
	cert, err := sshcert.New(sshcert.Params{Signer: key, PKToken: pkt, KeyID: identity, ValidAfter: validAfter, ValidBefore: validBefore,
		ForceCommand: r.ForceCommand, SourceAddress: r.SourceAddress})
	if err != nil {
		return nil, err
	}
	return &Login{Identity: identity, Issuer: issuer, Key: key, Cert: cert, ValidBefore: validBefore}, nil
}

// CheckKeyPath makes sure a login can write its key to keyPath, before the user spends time in
// the browser for a key that could not be stored: the key's directory, or the nearest of its
// parents that exists (login creates the rest), is a directory that takes new files, and keyPath
// holds no private key opkssh did not create. It leaves nothing behind.
func CheckKeyPath(keyPath string) error {
	dir := filepath.Dir(keyPath)
	for {
		fi, err := os.Stat(dir)
		if (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) && filepath.Dir(dir) != dir {
			dir = filepath.Dir(dir)
			continue
		}
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s is not a directory", dir)
		}
		if err != nil {
			return fmt.Errorf("cannot write %s: %w. Fix that, or choose another path with --key-file", keyPath, err)
		}
		break
	}
	probe, err := os.CreateTemp(dir, ".opkssh-check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: the directory %s does not take new files (%w). Fix its permissions, or choose another path with --key-file", keyPath, dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return CheckNotForeign(keyPath)
}

// CheckNotForeign refuses a key path that holds a private key opkssh did not create.
func CheckNotForeign(keyPath string) error {
	owned, err := sshcert.OwnedByOpkssh(keyPath)
	if err != nil {
		return err
	}
	if !owned {
		return fmt.Errorf("%s already holds a private key that opkssh did not create; it is left untouched. Use --key-file to choose another path, e.g. --key-file %s (and \"opkssh ssh-config --key-file\" with the same path, so that ssh uses it)", keyPath, filepath.Join(filepath.Dir(keyPath), "id_opkssh"))
	}
	return nil
}

// Save writes the login's key and certificate to keyPath and keyPath-cert.pub, and notes the key
// in the record of the current user's logins (record.go), so that status, "login --if-needed" and
// logout find it without --key-file. A private key opkssh did not create is never replaced
// (sshcert.ErrForeignKey). An error wrapping ErrNotRecorded means the files were written but the
// note was not: the caller warns and goes on.
func (l *Login) Save(keyPath string) error {
	if err := sshcert.WriteKeyPair(keyPath, l.Key, l.Cert, l.Comment()); err != nil {
		if errors.Is(err, sshcert.ErrForeignKey) {
			return fmt.Errorf("%w; use --key-file to choose another path", err)
		}
		return fmt.Errorf("writing the key and certificate: %w", err)
	}
	abs, err := filepath.Abs(keyPath)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRecorded, err)
	}
	k, err := UserKeys()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotRecorded, err)
	}
	e := RecordEntry{Key: abs, Type: TypeOf(l.Key), Issuer: l.Issuer, Written: time.Now().UTC().Truncate(time.Second)}
	if err := k.remember(e); err != nil {
		return fmt.Errorf("%w (%s): %v", ErrNotRecorded, k.RecordPath(), err)
	}
	return nil
}
