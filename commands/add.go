package commands

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/policy"
)

func newAddCmd() *cobra.Command {
	var policyPath string
	cmd := &cobra.Command{
		Use:   "add PRINCIPAL IDENTITY PROVIDER",
		Short: "Allow an identity to log in as a Unix user",
		Long: `Allow IDENTITY, as vouched for by PROVIDER (a name under "providers:" in the policy), to log in
as the Unix user PRINCIPAL.

IDENTITY forms:
  alice@example.com        the verified email address (case-insensitive)
  domain:example.com       any verified email address at exactly example.com (no subdomains)
  sub:248289761001         the OP's subject identifier (exact)
  group:ssh-admins         a member of this group (the provider's groups claim)
  claim:NAME=VALUE         a claim, NAME a dotted path (realm_access.roles=admin)

The edit keeps every comment, the blank lines and the order of the file, is written atomically
(temporary file, fsync, rename) and holds a lock, so concurrent adds all land. It takes effect at the next login;
sshd needs no restart.`,
		Example: `  opkssh add root alice@example.com corp
  opkssh add deploy group:release-managers corp --policy ./policies.yaml`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editPolicy(cmd, args, func(principal string, id policy.Identity, prov string) (string, error) {
				res, err := policy.Add(policyPath, principal, id, prov)
				return res.Message, err
			})
		},
	}
	cmd.Flags().StringVar(&policyPath, "policy", DefaultPolicyPath, "policy file to edit")
	return cmd
}

// editPolicy checks PRINCIPAL IDENTITY PROVIDER and runs one edit of the policy file (add, remove),
// printing what it did.
func editPolicy(cmd *cobra.Command, args []string, edit func(principal string, id policy.Identity, prov string) (string, error)) error {
	principal, idArg, prov := args[0], args[1], args[2]
	if !policy.ValidPrincipal(principal) {
		return fmt.Errorf("principal %q is not a valid Unix user name (letters, digits, '_', '.', '-'; not starting with '-'; at most 32)", principal)
	}
	id, err := policy.ParseIdentityArg(idArg)
	if err != nil {
		return err
	}
	msg, err := edit(principal, id, prov)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), msg)
	return nil
}
