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

	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

// runCILogin is `opkssh login --ci`: the job's platform token instead of a browser login
// (provider.CILogin). The key, certificate and agent flags work as for any login; the certificate
// is valid exactly as long as the job's token (or --lifetime, if shorter).
func runCILogin(cmd *cobra.Command, f loginFlags) error {
	for _, name := range []string{"issuer", "client-id", "client-secret", "device", "no-browser", "paste", "if-needed", "redirect-uri", "scopes", "gq"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s does not apply to --ci: the job's platform token names the issuer, needs no client and is always GQ-signed", name)
		}
	}
	if !f.ci {
		return errors.New("--id-token-env is for --ci in GitLab CI")
	}
	keyType, keyPath, err := loginTarget(&f)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	restrict, err := session.ParseRestrictions(f.forceCommand, f.sourceAddress, fl.Changed("force-command"), fl.Changed("source-address"))
	if err != nil {
		return err
	}
	if f.lifetime <= 0 {
		return fmt.Errorf("--lifetime %s must be positive", f.lifetime)
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
		if err := session.CheckKeyPath(keyPath); err != nil {
			return err
		}
	}
	signer, alg, err := session.NewKey(keyType)
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
	c := res.Claims
	lifetime := min(c.Expiry.Sub(c.IssuedAt), f.lifetime)
	login, err := session.Issue(signer, &res.LoginResult, time.Now(), lifetime, restrict)
	if err != nil {
		return err
	}
	if keyPath != "" {
		if err := saveLogin(cmd, login, keyPath); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Logged in as the %s job %s (issuer %s).\n", res.Platform, login.Identity, login.Issuer)
	fmt.Fprintf(out, "Certificate valid until %s (%s from now): as long as the job's ID token.\n", login.ValidBefore.Local().Format("2006-01-02 15:04:05 MST"), shortDuration(time.Until(login.ValidBefore)))
	if keyPath != "" {
		fmt.Fprintf(out, "Wrote %s and %s\n", keyPath, sshcert.CertPath(keyPath))
	}
	if f.agent {
		return addToAgent(out, sock, login)
	}
	return nil
}
