package commands

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/serverconfig"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Default server paths, named once in serverconfig.
const (
	DefaultPolicyPath = serverconfig.PolicyPath
	DefaultLogFile    = serverconfig.LogFile
)

func newVerifyCmd() *cobra.Command {
	var f serverconfig.Verify
	cmd := &cobra.Command{
		Use:   "verify PRINCIPAL CERT_B64 KEY_TYPE",
		Short: "Decide an ssh login (sshd's AuthorizedKeysCommand)",
		Long: `Decide whether the certificate may log in as PRINCIPAL. sshd runs this for every public-key
login attempt; configure it in sshd_config:

  AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t
  AuthorizedKeysCommandUser opkssh

verify checks the certificate, the PK token inside it (the OP's signature with the provider's
keys, audience, the nonce commitment to the certificate's key, the expiration rule) and the policy
(--policy, plus *.yaml in the policies.d directory beside it). If the login is allowed it prints
exactly one authorized_keys line and exits 0; otherwise it prints nothing on stdout and exits 1.

Each decision is logged as one JSON line (never a token): to syslog (AUTHPRIV, tag opkssh;
journalctl -t opkssh) when /dev/log exists, appended to --log-file (default ` + DefaultLogFile + `,
used when its directory exists), and on stderr, which sshd discards unless its LogLevel is DEBUG.

The OPs' discovery documents and keys are cached in --cache-dir: normally a login makes no network
request. A token signed by an unknown key triggers a refetch (at most every 30s per OP). While an
OP is unreachable its cached keys stay usable for --stale-for, and such decisions are logged with
"keys":"stale". A provider's jwks_file pins keys and never touches the network.

A rule's options (restrict, command="...", from="...", ...) are appended to the line it prints.

sshd runs only one AuthorizedKeysCommand. To keep another one (SSSD, EC2 Instance Connect), give it
to --chain (or the policy's chain block): verify runs it for every key that is not an opkssh
certificate and prints its output, with %u, %k and %t in its arguments replaced by verify's own
arguments. An opkssh certificate never reaches it; it runs as the verify user, for at most
--chain-timeout, and its output is limited to 256 KiB. Its answers are logged as
"decision":"chain"; a failure prints nothing and is logged ("reason":"chain_failed"). "opkssh server install" sets this up when it finds a command.`,
		Example: `  opkssh verify alice "$(awk '{print $2}' ~/.ssh/id_ecdsa-cert.pub)" ecdsa-sha2-nistp256-cert-v01@openssh.com --policy ./policies.yaml

  # in sshd_config, keeping SSSD's keys for plain keys:
  AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t --chain "/usr/bin/sss_ssh_authorizedkeys %u"`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd, f, args) },
	}
	// stdout belongs to sshd: even help goes to stderr.
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		c.SetOut(c.ErrOrStderr())
		fmt.Fprintln(c.ErrOrStderr(), c.Long)
		fmt.Fprintln(c.ErrOrStderr())
		fmt.Fprint(c.ErrOrStderr(), c.UsageString())
	})
	f.Register(cmd.Flags())
	return cmd
}

func runVerify(cmd *cobra.Command, f serverconfig.Verify, args []string) error {
	logger, closeLog := openDecisionLog(cmd.ErrOrStderr(), f.LogFile)
	defer closeLog()
	if len(args) != 3 {
		// A broken AuthorizedKeysCommand line: say so where the administrator looks.
		logger.Info("opkssh verify", "decision", "deny", "reason", verifier.ReasonBadRequest,
			"detail", fmt.Sprintf("verify takes 3 arguments (%%u %%k %%t), got %d; check AuthorizedKeysCommand in sshd_config", len(args)))
		return exitError{code: 1}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*f.Timeout)
	defer cancel()
	opts := verifier.Options{
		LoadPolicy: func() (*policy.Policy, error) {
			return policy.LoadForPrincipal(f.PolicyOptions(), f.CacheDir, args[0])
		},
		Keys: &verifier.Cache{Dir: f.CacheDir, Fetcher: verifier.Fetcher{Timeout: f.Timeout, TrustedUIDs: []int{f.PolicyOwner}}, StaleFor: f.StaleFor, Log: logger},
		Log:  logger,
	}
	if f.Chain != "" {
		opts.Chain = &verifier.Chain{Command: f.Chain, Timeout: f.ChainTimeout, Source: "--chain"}
	}
	res := verifier.Verify(ctx, opts, verifier.Request{Principal: args[0], CertB64: args[1], KeyType: args[2], ClientAddr: f.ClientAddr})
	if !res.Allowed {
		return exitError{code: 1}
	}
	fmt.Fprintln(cmd.OutOrStdout(), res.Line)
	return nil
}
