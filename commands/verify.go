package commands

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Default server paths.
const (
	DefaultPolicyPath = "/etc/opkssh/policies.yaml"
	DefaultLogFile    = "/var/log/opkssh/verify.log"
)

type verifyFlags struct {
	policyPath, logFile, clientAddr string
	cacheDir                        string
	staleFor                        time.Duration
	timeout                         time.Duration
	policyOwner                     int
}

func newVerifyCmd() *cobra.Command {
	var f verifyFlags
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
"keys":"stale". A provider's jwks_file pins keys and never touches the network.`,
		Example: `  opkssh verify alice "$(awk '{print $2}' ~/.ssh/id_ecdsa-cert.pub)" ecdsa-sha2-nistp256-cert-v01@openssh.com --policy ./policies.yaml`,
		Args:    cobra.ArbitraryArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return runVerify(cmd, f, args) },
	}
	// stdout belongs to sshd: even help goes to stderr.
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		c.SetOut(c.ErrOrStderr())
		fmt.Fprintln(c.ErrOrStderr(), c.Long)
		fmt.Fprintln(c.ErrOrStderr())
		fmt.Fprint(c.ErrOrStderr(), c.UsageString())
	})
	fl := cmd.Flags()
	fl.StringVar(&f.policyPath, "policy", DefaultPolicyPath, "policy file; drop-ins are read from policies.d beside it")
	fl.StringVar(&f.logFile, "log-file", "", "append decisions to this file (default "+DefaultLogFile+" when /var/log/opkssh exists)")
	fl.StringVar(&f.clientAddr, "client-addr", "", "sshd's %C (client address and port, server address and port): logged, and tested by rules with require.from")
	fl.DurationVar(&f.timeout, "timeout", verifier.DefaultFetchTimeout, "limit for each request to the OP")
	fl.StringVar(&f.cacheDir, "cache-dir", verifier.DefaultCacheDir, "where the OPs' keys and a compiled policy snapshot are cached (owned by the verify user, mode 0700); \"\" for none")
	fl.DurationVar(&f.staleFor, "stale-for", verifier.DefaultStaleFor, "how long cached keys stay usable while the OP is unreachable")
	fl.IntVar(&f.policyOwner, "policy-owner", 0, "also trust policy files owned by this uid besides root (demos and tests; never in sshd_config)")
	return cmd
}

func runVerify(cmd *cobra.Command, f verifyFlags, args []string) error {
	logger, closeLog := openDecisionLog(cmd.ErrOrStderr(), f.logFile)
	defer closeLog()
	if len(args) != 3 {
		// A broken AuthorizedKeysCommand line: say so where the administrator looks.
		logger.Info("opkssh verify", "decision", "deny", "reason", verifier.ReasonBadRequest,
			"detail", fmt.Sprintf("verify takes 3 arguments (%%u %%k %%t), got %d; check AuthorizedKeysCommand in sshd_config", len(args)))
		return exitError{code: 1}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*f.timeout)
	defer cancel()
	opts := verifier.Options{
		LoadPolicy: func() (*policy.Policy, error) {
			return policy.LoadForPrincipal(policy.LoadOptions{
				Path:        f.policyPath,
				DropInDir:   filepath.Join(filepath.Dir(f.policyPath), "policies.d"),
				TrustedUIDs: []int{0, f.policyOwner},
			}, f.cacheDir, args[0])
		},
		Keys: &verifier.Cache{Dir: f.cacheDir, Fetcher: verifier.Fetcher{Timeout: f.timeout, TrustedUIDs: []int{f.policyOwner}}, StaleFor: f.staleFor, Log: logger},
		Log:  logger,
	}
	res := verifier.Verify(ctx, opts, verifier.Request{Principal: args[0], CertB64: args[1], KeyType: args[2], ClientAddr: f.clientAddr})
	if !res.Allowed {
		return exitError{code: 1}
	}
	fmt.Fprintln(cmd.OutOrStdout(), res.Line)
	return nil
}
