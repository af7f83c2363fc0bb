package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

// runCILogin is `opkssh login --ci`: the job's platform token instead of a browser login
// (provider.CILogin). The key, certificate and agent flags work as for any login; the certificate
// is valid exactly as long as the job's token.
func runCILogin(cmd *cobra.Command, f loginFlags) error {
	for _, name := range []string{"issuer", "client-id", "client-secret", "device", "no-browser", "paste", "if-needed", "redirect-uri", "scopes"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s does not apply to --ci: the job's platform token names the issuer and needs no client", name)
		}
	}
	if !f.ci && cmd.Flags().Changed("id-token-env") {
		return errors.New("--id-token-env is for --ci in GitLab CI")
	}
	var keyPath string
	var err error
	if f.agentOnly {
		if f.keyFile != "" {
			return errors.New("--key-file and --agent-only do not go together: --agent-only writes no file")
		}
		f.agent = true
	} else if keyPath, err = loginKeyPath(f); err != nil {
		return err
	}
	restrict, err := loginRestrictions(cmd, f)
	if err != nil {
		return err
	}
	sock := os.Getenv(sshagent.EnvSocket)
	if f.agent {
		conn, err := dialAgent(sock)
		if err != nil {
			return err
		}
		conn.Close()
	}
	if keyPath != "" {
		if owned, err := sshcert.OwnedByOpkssh(keyPath); err != nil {
			return err
		} else if !owned {
			return fmt.Errorf("%s already holds a private key that opkssh did not create; it is left untouched. Use --key-file to choose another path", keyPath)
		}
	}
	signer, alg, err := newKey(f.keyType)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := provider.CILogin(ctx, provider.CIOptions{Signer: signer, Alg: alg, Getenv: os.Getenv, IDTokenEnv: f.idTokenEnv, Status: cmd.ErrOrStderr()})
	if err != nil {
		return err
	}
	compact, err := res.PKToken.Compact()
	if err != nil {
		return fmt.Errorf("serializing the PK token: %w", err)
	}
	c := res.Claims
	lifetime := c.Expiry.Sub(c.IssuedAt)
	if lifetime > f.lifetime {
		lifetime = f.lifetime
	}
	validAfter, validBefore := sshcert.Window(time.Now(), c.IssuedAt, lifetime)
	cert, err := sshcert.New(sshcert.Params{Signer: signer, PKToken: compact, KeyID: c.Subject, ValidAfter: validAfter, ValidBefore: validBefore,
		ForceCommand: restrict.ForceCommand, SourceAddress: restrict.SourceAddress})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	comment := sshagent.CommentPrefix + c.Subject
	if keyPath != "" {
		if err := sshcert.WriteKeyPair(keyPath, signer, cert, comment); err != nil {
			return fmt.Errorf("writing the key and certificate: %w", err)
		}
	}
	fmt.Fprintf(out, "Logged in as the %s job %s (issuer %s).\n", res.Platform, c.Subject, c.Issuer)
	fmt.Fprintf(out, "Certificate valid until %s (%s from now): as long as the job's ID token.\n", validBefore.Local().Format("2006-01-02 15:04:05 MST"), shortDuration(time.Until(validBefore)))
	if keyPath != "" {
		fmt.Fprintf(out, "Wrote %s and %s\n", keyPath, sshcert.CertPath(keyPath))
	}
	if f.agent {
		if err := addToAgent(out, sock, signer, cert, comment, time.Until(validBefore)); err != nil {
			return err
		}
	}
	return nil
}
