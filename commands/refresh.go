package commands

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/openpubkey/openpubkey/pktoken"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
	"github.com/opkssh-team/opkssh/verifier"
)

// The refresh token side of login: keeping the OP's refresh token beside the key after a login,
// and "login --if-needed" renewing the certificate with it, without a browser. The key pair and
// the original PK token stay; the refreshed ID token rides along in the PK token (see
// provider/refresh.go for why, and for what servers check).

// keepRefreshToken stores the login's refresh token beside the key at keyPath, or removes the one
// an earlier login left there: a refresh token belongs to the key of its own login.
func keepRefreshToken(cmd *cobra.Command, out io.Writer, cfg provider.Config, keyPath, token string) {
	path := provider.RefreshTokenPath(keyPath)
	if token == "" || cfg.NoRefreshToken {
		if err := provider.RemoveRefreshToken(path); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "Could not remove the earlier login's refresh token: %v\n", err)
		}
		return
	}
	err := provider.SaveRefreshToken(path, provider.StoredRefreshToken{Issuer: cfg.Issuer, ClientID: cfg.ClientID, RefreshToken: token})
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "Could not store the refresh token (%v); \"opkssh login --if-needed\" will need the browser.\n", err)
		provider.RemoveRefreshToken(path)
		return
	}
	fmt.Fprintf(out, "Wrote %s: with it, \"opkssh login --if-needed\" renews the certificate without a browser.\n", path)
}

// refreshLogin is the second step of --if-needed: renew the expiring certificate of the key at
// keyPath with the refresh token stored beside it, if there is one for the OP asked for. The
// caller holds the key's login lock (lockLogin): a second refresh with the same token would be
// taken as a replay by OPs that rotate refresh tokens. It reports whether the login is now valid.
// When the refresh fails it says why on stderr, removes a refresh token the OP will not take
// again, and returns false: the caller goes on with the browser or device login.
func refreshLogin(cmd *cobra.Command, out io.Writer, f loginFlags, restrict restrictions, cfg provider.Config, keyPath, sock string) (bool, error) {
	rtPath := provider.RefreshTokenPath(keyPath)
	if _, err := os.Lstat(rtPath); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	errOut := cmd.ErrOrStderr()
	fail := func(err error) (bool, error) {
		fmt.Fprintf(errOut, "Could not renew the login without a browser: %v\n", err)
		return false, nil
	}
	st, err := certstatus.OfFile(sshcert.CertPath(keyPath), time.Now(), f.minRemaining)
	if err != nil || st.State == certstatus.Missing {
		return false, err
	}
	saved, err := provider.LoadRefreshToken(rtPath)
	if err != nil {
		return fail(err)
	}
	if cfg.Issuer != "" && (cfg.Issuer != saved.Issuer || cfg.ClientID != "" && cfg.ClientID != saved.ClientID) {
		return false, nil // another OP or client asked for: this token is not for it
	}
	if saved.Issuer != st.Issuer {
		provider.RemoveRefreshToken(rtPath)
		return fail(fmt.Errorf("%s is for %s but the certificate is from %s; removed it", rtPath, saved.Issuer, st.Issuer))
	}
	rcfg := cfg
	rcfg.Issuer, rcfg.ClientID = saved.Issuer, saved.ClientID
	key, cert, pkt, err := readLogin(keyPath)
	if err != nil {
		return fail(err)
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := provider.Refresh(ctx, rcfg, pkt.Payload, saved.RefreshToken, nil)
	if errors.Is(err, provider.ErrRefreshRejected) || errors.Is(err, provider.ErrRefreshUnusable) {
		provider.RemoveRefreshToken(rtPath)
		return fail(fmt.Errorf("%v; removed %s", err, rtPath))
	}
	if err != nil {
		return fail(err)
	}
	if res.RefreshToken != saved.RefreshToken {
		saved.RefreshToken = res.RefreshToken
		if err := provider.SaveRefreshToken(rtPath, saved); err != nil {
			fmt.Fprintf(errOut, "Could not store the OP's new refresh token (%v); the next renewal will need the browser.\n", err)
			provider.RemoveRefreshToken(rtPath)
		}
	}

	pkt.FreshIDToken = res.IDToken
	compact, err := pkt.Compact()
	if err != nil {
		return fail(fmt.Errorf("serializing the PK token: %w", err))
	}
	validAfter, validBefore := sshcert.Window(time.Now(), res.Claims.IssuedAt, f.lifetime)
	if !restrict.set {
		// The renewed certificate keeps the restrictions of the one it replaces.
		restrict.ForceCommand = cert.CriticalOptions[sshcert.OptionForceCommand]
		if sa := cert.CriticalOptions[sshcert.OptionSourceAddress]; sa != "" {
			restrict.SourceAddress = strings.Split(sa, ",")
		}
	}
	renewed, err := sshcert.New(sshcert.Params{Signer: key, PKToken: compact, KeyID: cert.KeyId,
		ValidAfter: validAfter, ValidBefore: validBefore, ForceCommand: restrict.ForceCommand, SourceAddress: restrict.SourceAddress})
	if err != nil {
		return fail(err)
	}
	comment := sshagent.CommentPrefix + st.Identity
	if err := sshcert.WriteCert(keyPath, renewed, comment); err != nil {
		return fail(fmt.Errorf("writing the certificate: %w", err))
	}
	fmt.Fprintf(out, "Refreshed the login of %s (issuer %s) without a browser.\n", st.Identity, st.Issuer)
	fmt.Fprintf(out, "Certificate valid until %s (%s from now).\n", validBefore.Local().Format("2006-01-02 15:04 MST"), shortDuration(time.Until(validBefore)))
	fmt.Fprintf(out, "Wrote %s (the key is unchanged)\n", sshcert.CertPath(keyPath))
	if f.agent {
		if err := addToAgent(out, sock, key, renewed, comment, time.Until(validBefore)); err != nil {
			return true, fmt.Errorf("%w (the certificate file was renewed)", err)
		}
	}
	return true, nil
}

// readLogin reads the private key at keyPath, its certificate and the PK token in it, and checks
// that they belong together.
func readLogin(keyPath string) (crypto.Signer, *ssh.Certificate, *pktoken.PKToken, error) {
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
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	parsed, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading %s: %w", keyPath, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s holds a %T, not a signing key", keyPath, parsed)
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil || !bytes.Equal(pub.Marshal(), cert.Key.Marshal()) {
		return nil, nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, sshcert.CertPath(keyPath))
	}
	return key, cert, pkt, nil
}
