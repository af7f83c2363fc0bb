package session

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/openpubkey/openpubkey/pktoken"
	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
	"github.com/opkssh-team/opkssh/verifier"
)

// The refresh token side of a login: keeping the OP's refresh token beside the key after a login,
// and renewing the certificate with it, without a browser. The key pair and the original PK token
// stay; the refreshed ID token rides along in the PK token (see provider/refresh.go for why, and
// for what servers check).

// StoreRefreshToken keeps the login's refresh token beside the key at keyPath and returns the
// file's path, or, when there is no token to keep (token is "" or cfg.NoRefreshToken), removes the
// one an earlier login left there and returns "": a refresh token belongs to the key of its own
// login. A token that cannot be stored is removed too, so no stale one stays.
func StoreRefreshToken(keyPath string, cfg provider.Config, token string) (string, error) {
	path := provider.RefreshTokenPath(keyPath)
	if token == "" || cfg.NoRefreshToken {
		if err := provider.RemoveRefreshToken(path); err != nil {
			return "", fmt.Errorf("could not remove the earlier login's refresh token: %w", err)
		}
		return "", nil
	}
	err := provider.SaveRefreshToken(path, provider.StoredRefreshToken{Issuer: cfg.Issuer, ClientID: cfg.ClientID, RefreshToken: token})
	if err != nil {
		provider.RemoveRefreshToken(path)
		return "", fmt.Errorf("could not store the refresh token (%w); \"opkssh login --if-needed\" will need the browser", err)
	}
	return path, nil
}

// ErrNotRenewable means there is nothing to renew with: no refresh token beside the key, no
// certificate, or a token for another OP or client than the one asked for. The caller logs in
// afresh; there is nothing to tell the user.
var ErrNotRenewable = errors.New("no refresh token for this login")

// RenewalError is a renewal that was tried and failed (the OP refused, the files do not belong
// together, ...). The caller says why and logs in afresh. A refresh token the OP will not take
// again has been removed.
type RenewalError struct{ Err error }

func (e *RenewalError) Error() string { return e.Err.Error() }
func (e *RenewalError) Unwrap() error { return e.Err }

// RenewOptions say what a renewal asks for.
type RenewOptions struct {
	// Config is the OP asked for; an empty Issuer takes the one the refresh token is for.
	Config       provider.Config
	Lifetime     time.Duration
	MinRemaining time.Duration // the certificate is renewed even if still valid; this only sets the status
	// Restrictions replace the certificate's; nil keeps those of the certificate renewed.
	Restrictions *Restrictions
	Now          func() time.Time // default time.Now
	HTTPClient   *http.Client     // default provider's
}

// Renewal is the result of Renew.
type Renewal struct {
	Login
	// Warning, if not nil, did not stop the renewal: the OP's new refresh token could not be
	// stored, and the next renewal will need the browser.
	Warning error
}

// Renew renews the certificate of the key at keyPath with the refresh token stored beside it:
// the OP's refreshed ID token joins the PK token, the certificate is reissued for the same key and
// written, and a rotated refresh token replaces the stored one. The caller must hold the key's
// Lock: a second refresh with the same token would be taken as a replay by OPs that rotate
// refresh tokens.
//
// It returns ErrNotRenewable when there is nothing to renew with and a *RenewalError when the
// renewal failed; other errors are the caller's to report (an unreadable certificate).
func Renew(ctx context.Context, keyPath string, o RenewOptions) (*Renewal, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	rtPath := provider.RefreshTokenPath(keyPath)
	if _, err := os.Lstat(rtPath); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotRenewable
	}
	fail := func(err error) (*Renewal, error) { return nil, &RenewalError{err} }
	st, err := certstatus.OfFile(sshcert.CertPath(keyPath), now(), o.MinRemaining)
	if err != nil {
		return nil, err
	}
	if st.State == certstatus.Missing {
		return nil, ErrNotRenewable
	}
	saved, err := provider.LoadRefreshToken(rtPath)
	if err != nil {
		return fail(err)
	}
	cfg := o.Config
	if cfg.Issuer != "" && (cfg.Issuer != saved.Issuer || cfg.ClientID != "" && cfg.ClientID != saved.ClientID) {
		return nil, ErrNotRenewable // another OP or client asked for: this token is not for it
	}
	if saved.Issuer != st.Issuer {
		provider.RemoveRefreshToken(rtPath)
		return fail(fmt.Errorf("%s is for %s but the certificate is from %s; removed it", rtPath, saved.Issuer, st.Issuer))
	}
	cfg.Issuer, cfg.ClientID = saved.Issuer, saved.ClientID
	key, cert, pkt, err := ReadKeyPair(keyPath)
	if err != nil {
		return fail(err)
	}

	res, err := provider.Refresh(ctx, cfg, pkt.Payload, saved.RefreshToken, o.HTTPClient)
	if errors.Is(err, provider.ErrRefreshRejected) || errors.Is(err, provider.ErrRefreshUnusable) {
		provider.RemoveRefreshToken(rtPath)
		return fail(fmt.Errorf("%v; removed %s", err, rtPath))
	}
	if err != nil {
		return fail(err)
	}
	var r Renewal
	if res.RefreshToken != saved.RefreshToken {
		saved.RefreshToken = res.RefreshToken
		if err := provider.SaveRefreshToken(rtPath, saved); err != nil {
			r.Warning = fmt.Errorf("could not store the OP's new refresh token (%w); the next renewal will need the browser", err)
			provider.RemoveRefreshToken(rtPath)
		}
	}

	pkt.FreshIDToken = res.IDToken
	compact, err := pkt.Compact()
	if err != nil {
		return fail(fmt.Errorf("serializing the PK token: %w", err))
	}
	restrict := restrictionsOf(cert)
	if o.Restrictions != nil {
		restrict = *o.Restrictions
	}
	// The key ID stays the certificate's; the identity shown is what its PK token says.
	l, err := issue(key, compact, cert.KeyId, st.Issuer, res.Claims.IssuedAt, now(), o.Lifetime, restrict)
	if err != nil {
		return fail(err)
	}
	l.Identity = st.Identity
	if err := sshcert.WriteCert(keyPath, l.Cert, l.Comment()); err != nil {
		return fail(fmt.Errorf("writing the certificate: %w", err))
	}
	r.Login = *l
	return &r, nil
}

// ReadKeyPair reads the private key at keyPath, its certificate and the PK token in it, and checks
// that they belong together.
func ReadKeyPair(keyPath string) (crypto.Signer, *ssh.Certificate, *pktoken.PKToken, error) {
	cert, err := sshcert.ReadCertFile(sshcert.CertPath(keyPath))
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err := sshcert.PKToken(cert)
	if err != nil {
		return nil, nil, nil, err
	}
	pkt, err := verifier.ParsePKToken(raw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the PK token in %s: %w", sshcert.CertPath(keyPath), err)
	}
	key, err := readPrivateKey(keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s holds a %T, not a signing key", keyPath, key)
	}
	pub, err := ssh.NewPublicKey(signer.Public())
	if err != nil || !bytes.Equal(pub.Marshal(), cert.Key.Marshal()) {
		return nil, nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, sshcert.CertPath(keyPath))
	}
	return signer, cert, pkt, nil
}

func readPrivateKey(keyPath string) (crypto.PrivateKey, error) {
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	key, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", keyPath, err)
	}
	return key, nil
}
