package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

// The refresh token side of login; the work is session.StoreRefreshToken and session.Renew.

// keepRefreshToken stores the login's refresh token beside the key at keyPath (or removes an
// earlier one) and says so.
func keepRefreshToken(cmd *cobra.Command, out io.Writer, cfg provider.Config, keyPath, token string) {
	path, err := session.StoreRefreshToken(keyPath, cfg, token)
	switch {
	case err != nil:
		fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %v\n", err)
	case path != "":
		fmt.Fprintf(out, "Wrote %s: with it, \"opkssh login --if-needed\" renews the certificate without a browser.\n", path)
	}
}

// refreshLogin is the second step of --if-needed: renew the expiring certificate of the key at
// keyPath with the refresh token stored beside it (session.Renew). The caller holds the key's
// lock. It reports whether the login is now valid; when the renewal fails it says why on stderr
// and returns false: the caller goes on with the browser or device login.
func refreshLogin(cmd *cobra.Command, out io.Writer, f loginFlags, restrict *session.Restrictions, cfg provider.Config, keyPath, sock string) (bool, error) {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	r, err := session.Renew(ctx, keyPath, session.RenewOptions{Config: cfg, Lifetime: f.lifetime, MinRemaining: f.minRemaining, Restrictions: restrict})
	var failed *session.RenewalError
	switch {
	case errors.Is(err, session.ErrNotRenewable):
		return false, nil
	case errors.As(err, &failed):
		fmt.Fprintf(cmd.ErrOrStderr(), "Could not renew the login without a browser: %v\n", failed.Err)
		return false, nil
	case err != nil:
		return false, err
	}
	if r.Warning != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %v\n", r.Warning)
	}
	fmt.Fprintf(out, "Refreshed the login of %s (issuer %s) without a browser.\n", r.Identity, r.Issuer)
	printValidUntil(out, r.ValidBefore)
	fmt.Fprintf(out, "Wrote %s (the key is unchanged)\n", sshcert.CertPath(keyPath))
	if f.agent {
		if err := addToAgent(out, sock, &r.Login); err != nil {
			return true, fmt.Errorf("%w (the certificate file was renewed)", err)
		}
	}
	return true, nil
}
