package commands

import (
	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/policy"
)

func newRemoveCmd() *cobra.Command {
	var policyPath string
	cmd := &cobra.Command{
		Use:   "remove PRINCIPAL IDENTITY PROVIDER",
		Short: "Stop an identity logging in as a Unix user (the inverse of add)",
		Long: `Stop IDENTITY, as vouched for by PROVIDER, logging in as the Unix user PRINCIPAL: the inverse
of "opkssh add", with the same IDENTITY forms (alice@example.com, domain:example.com, sub:ID,
group:NAME, claim:NAME=VALUE; email addresses compare ignoring case).

IDENTITY is removed from every rule for PROVIDER that lists PRINCIPAL. A rule left without
identities is deleted.

remove changes nothing and exits 1 when:
  - such a rule also lists other principals (principals: [root, deploy]): removing the identity
    there would take away those too. It names the rule; split it by hand, then run remove again.
  - no rule lists IDENTITY for PRINCIPAL and PROVIDER, so that a typo in an offboarding script does
    not pass unnoticed. It says where the identity is listed instead, if anywhere.

Other rules may still let the person in: an email_domain or group rule, or another provider.
remove adds a note when it can tell; "opkssh policy list --principal PRINCIPAL" shows every rule
for the user, and "opkssh policy test" decides for a real certificate. Deny entries are never
touched; to keep someone out whatever the rules say, add a deny entry by hand.

Like add, the edit keeps the comments, blank lines and order of the file, is written atomically and
holds a lock. It takes effect at the next login; open sessions stay open.`,
		Example: `  opkssh remove root alice@example.com corp
  opkssh remove deploy group:release-managers corp --policy ./policies.yaml`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editPolicy(cmd, args, func(principal string, id policy.Identity, prov string) (string, error) {
				res, err := policy.Remove(policyPath, principal, id, prov)
				return res.Message, err
			})
		},
	}
	cmd.Flags().StringVar(&policyPath, "policy", DefaultPolicyPath, "policy file to edit")
	return cmd
}
