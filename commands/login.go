package commands

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/browser"
	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

type loginFlags struct {
	issuer, clientID, clientSecret, scopes string
	keyType, keyFile                       string
	lifetime, timeout                      time.Duration
	noBrowser                              bool
	redirectURIs                           []string
}

func newLoginCmd() *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login --issuer URL --client-id ID",
		Short: "Log in with your OpenID Provider and write an SSH key and certificate",
		Long: `Log in with your OpenID Provider (OP) in the browser and write an SSH key and certificate.

login makes a fresh key pair, runs an authorization-code + PKCE login whose nonce commits to that
key, and packs the OP's signed ID token (as an OpenPubkey PK token) into an SSH certificate signed
by the key itself. ssh picks both files up by default, so afterwards plain "ssh user@host" works on
servers that run "opkssh verify".

Files written (never a private key opkssh did not create):
  ecdsa (default)   ~/.ssh/id_ecdsa     and ~/.ssh/id_ecdsa-cert.pub
  ed25519           ~/.ssh/id_ed25519   and ~/.ssh/id_ed25519-cert.pub
  --key-file PATH   PATH                and PATH-cert.pub

The OP must allow the redirect URI http://localhost:3000/login-callback (or :10001 or :11110; the
first free port is used). Issuers must be https, except http on loopback for test OPs.`,
		Example: `  opkssh login --issuer https://accounts.google.com --client-id 1234.apps.googleusercontent.com --client-secret S
  opkssh login --issuer https://sso.example.com/realms/main --client-id opkssh --key-type ed25519
  opkssh login --issuer http://127.0.0.1:8888 --client-id opkssh --no-browser --key-file ./demo_key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLogin(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.issuer, "issuer", "", "OP issuer URL, exactly as in its ID tokens (https://…)")
	fl.StringVar(&f.clientID, "client-id", "", "client ID registered for opkssh at the OP")
	fl.StringVar(&f.clientSecret, "client-secret", "", "client secret, for OPs that treat desktop apps as confidential clients")
	fl.StringVar(&f.scopes, "scopes", strings.Join(provider.DefaultScopes, " "), "space-separated scopes to request")
	fl.StringVar(&f.keyType, "key-type", "ecdsa", "key type: ecdsa (P-256) or ed25519")
	fl.StringVar(&f.keyFile, "key-file", "", "private key path (default ~/.ssh/id_ecdsa or ~/.ssh/id_ed25519)")
	fl.DurationVar(&f.lifetime, "lifetime", 24*time.Hour, "certificate validity from the token's issue time (servers apply their own limit)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the browser login")
	fl.BoolVar(&f.noBrowser, "no-browser", false, "print the login URL instead of opening a browser")
	fl.StringSliceVar(&f.redirectURIs, "redirect-uri", provider.DefaultRedirectURIs, "loopback redirect URIs to try in order")
	return cmd
}

func runLogin(cmd *cobra.Command, f loginFlags) error {
	cfg := provider.Config{
		Issuer:       strings.TrimSpace(f.issuer),
		ClientID:     f.clientID,
		ClientSecret: f.clientSecret,
		Scopes:       strings.Fields(f.scopes),
		RedirectURIs: f.redirectURIs,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.lifetime <= 0 {
		return fmt.Errorf("--lifetime %s must be positive", f.lifetime)
	}
	signer, alg, defaultName, err := newKey(f.keyType)
	if err != nil {
		return err
	}
	keyPath := f.keyFile
	if keyPath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("cannot find your home directory (%v); pass --key-file", err)
		}
		keyPath = filepath.Join(home, ".ssh", defaultName)
	}
	// Refuse before the user spends time in the browser.
	if owned, err := sshcert.OwnedByOpkssh(keyPath); err != nil {
		return err
	} else if !owned {
		return fmt.Errorf("%s already holds a private key that opkssh did not create; it is left untouched. Use --key-file to choose another path, e.g. --key-file %s", keyPath, filepath.Join(filepath.Dir(keyPath), "id_opkssh"))
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	opts := provider.LoginOptions{Signer: signer, Alg: alg, Status: cmd.ErrOrStderr()}
	if !f.noBrowser {
		browser.Stdout, browser.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
		opts.OpenBrowser = browser.OpenURL
	}
	res, err := provider.Login(ctx, cfg, opts)
	if err != nil {
		return err
	}
	compact, err := res.PKToken.Compact()
	if err != nil {
		return fmt.Errorf("serializing the PK token: %w", err)
	}
	c := res.Claims
	who := c.Email
	if who == "" {
		who = c.Subject
	}
	validAfter := c.IssuedAt.Add(-time.Minute) // tolerate a server clock slightly behind the OP's
	validBefore := c.IssuedAt.Add(f.lifetime)
	cert, err := sshcert.New(sshcert.Params{Signer: signer, PKToken: compact, KeyID: who, ValidAfter: validAfter, ValidBefore: validBefore})
	if err != nil {
		return err
	}
	if err := sshcert.WriteKeyPair(keyPath, signer, cert, "opkssh:"+who); err != nil {
		if errors.Is(err, sshcert.ErrForeignKey) {
			return fmt.Errorf("%v; use --key-file to choose another path", err)
		}
		return fmt.Errorf("writing the key and certificate: %w", err)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Logged in as %s (issuer %s).\n", who, c.Issuer)
	fmt.Fprintf(out, "Certificate valid until %s (%s from now).\n", validBefore.Local().Format("2006-01-02 15:04 MST"), time.Until(validBefore).Round(time.Minute))
	fmt.Fprintf(out, "Wrote %s and %s\n", keyPath, sshcert.CertPath(keyPath))
	return nil
}

// newKey makes the user's key pair and returns its JOSE algorithm and default file name.
func newKey(keyType string) (crypto.Signer, string, string, error) {
	switch strings.ToLower(keyType) {
	case "ecdsa", "ecdsa-p256", "p256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k, "ES256", "id_ecdsa", err
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, "EdDSA", "id_ed25519", err
	default:
		return nil, "", "", fmt.Errorf("--key-type %q is not supported: use ecdsa (default) or ed25519", keyType)
	}
}
