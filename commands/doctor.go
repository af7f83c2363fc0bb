package commands

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/doctor"
)

func newDoctorCmd() *cobra.Command {
	var o doctor.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this server's opkssh set-up and say what to fix",
		Long: `Check everything "opkssh verify" depends on, the way sshd runs it: sshd's effective settings
(sshd -T: our AuthorizedKeysCommand, a conflicting one, AuthorizedKeysCommandUser, MaxAuthTries),
the ownership and mode of the binary and each parent directory, the policy, each provider's
reachability or cached keys and its clock, the cache and log directories, and SELinux. Paths given
to verify in sshd's AuthorizedKeysCommand are read with verify's own flags (--policy, --cache-dir,
--log-file, --stale-for, --policy-owner) and are the ones checked; --policy-owner there is a warning.

Run it as root. Exit status 1 when anything is FAIL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			findings := doctor.Run(cmd.Context(), o)
			failed := false
			if asJSON {
				for _, f := range findings {
					failed = failed || f.Level == doctor.Fail
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(findings); err != nil {
					return err
				}
			} else {
				failed = doctor.Print(cmd.OutOrStdout(), findings)
			}
			if failed {
				fmt.Fprintln(cmd.ErrOrStderr(), "opkssh doctor: problems found (FAIL lines above)")
				return exitError{code: 1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.SSHDConfig, "sshd-config", "/etc/ssh/sshd_config", "sshd configuration to examine")
	fl.StringVar(&o.PolicyPath, "policy", "", "policy file, if sshd's command line does not name one (default "+DefaultPolicyPath+")")
	fl.BoolVar(&asJSON, "json", false, "print findings as JSON")
	return cmd
}
