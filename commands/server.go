package commands

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/serverinstall"
)

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Set a server up for opkssh logins, or take it down",
	}
	cmd.AddCommand(newServerInstallCmd(), newServerUninstallCmd())
	return cmd
}

func serverFlags(cmd *cobra.Command, o *serverinstall.Options) {
	d := serverinstall.Defaults()
	fl := cmd.Flags()
	fl.BoolVar(&o.DryRun, "dry-run", false, "show every change without making it")
	fl.StringVar(&o.BinaryPath, "binary-path", d.BinaryPath, "where sshd will run opkssh from (root-owned parents, not under /tmp)")
	fl.StringVar(&o.VerifyUser, "verify-user", d.VerifyUser, "unprivileged account that runs verify (AuthorizedKeysCommandUser)")
	fl.StringVar(&o.ConfigDir, "config-dir", d.ConfigDir, "policy directory")
	fl.StringVar(&o.CacheDir, "cache-dir", d.CacheDir, "verify's key and policy cache")
	fl.StringVar(&o.LogDir, "log-dir", d.LogDir, "decision log directory")
	fl.StringVar(&o.DropIn, "sshd-drop-in", d.DropIn, "sshd_config drop-in to write")
	fl.StringVar(&o.SSHDConfig, "sshd-config", d.SSHDConfig, "main sshd_config, validated with sshd -t")
}

func newServerInstallCmd() *cobra.Command {
	var o serverinstall.Options
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install opkssh as sshd's AuthorizedKeysCommand (root; idempotent)",
		Long: `Set this server up for opkssh logins. As root; run it again at any time (it only changes what
is not as it should be), and use --dry-run to see every change first.

It creates the unprivileged verify user, copies this opkssh binary to --binary-path (root:root
0755), creates /etc/opkssh (root, group of the verify user, 0750) with a commented starter
policies.yaml, the cache and log directories (the verify user's), and the sshd drop-in
/etc/ssh/sshd_config.d/60-opkssh.conf. It keeps a backup of any file it replaces, checks the result
with "sshd -t" (taking the drop-in back if sshd refuses it) and reloads a running sshd. The drop-in's
AuthorizedKeysCommand line carries every path you changed (--config-dir, --cache-dir, --log-dir).

sshd runs only one AuthorizedKeysCommand. If one is already configured (SSSD's
sss_ssh_authorizedkeys, EC2 Instance Connect, ...), install says where and what it is and changes
nothing until you choose: --chain-existing keeps it for every key that is not an opkssh certificate
(opkssh verify --chain runs it and passes its answer on), --replace-existing replaces it. Lines that
sshd would read before the drop-in are commented out, in a backup that uninstall restores.

Next: add your provider to /etc/opkssh/policies.yaml, allow people with "opkssh add", and check
everything with "opkssh doctor".`,
		Example: `  sudo opkssh server install --dry-run
  sudo opkssh server install

  # keep SSSD's keys for everything that is not an opkssh certificate; see the line first
  sudo opkssh server install --chain-existing --dry-run
  sudo opkssh server install --chain-existing

  # policy, cache and log elsewhere: the drop-in passes these paths to verify
  sudo opkssh server install --config-dir /srv/opkssh --cache-dir /srv/opkssh-cache --log-dir /srv/opkssh-log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			mode := "Installing"
			if o.DryRun {
				mode = "Dry run: installing"
			}
			fmt.Fprintf(o.Out, "%s opkssh for sshd:\n", mode)
			if err := serverinstall.Install(o); err != nil {
				return err
			}
			if !o.DryRun {
				fmt.Fprintln(o.Out, "Done. Next: edit the policy, \"opkssh add\" people, and run \"opkssh doctor\".")
			}
			return nil
		},
	}
	serverFlags(cmd, &o)
	cmd.Flags().BoolVar(&o.ChainExisting, "chain-existing", false, "keep an AuthorizedKeysCommand already configured, for keys that are not opkssh certificates")
	cmd.Flags().BoolVar(&o.ReplaceExisting, "replace-existing", false, "replace an AuthorizedKeysCommand already configured")
	return cmd
}

func newServerUninstallCmd() *cobra.Command {
	var o serverinstall.Options
	var purge bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Undo server install (root)",
		Long: `Undo what "opkssh server install" did, as recorded in /etc/opkssh/.install-state.json: remove the
sshd drop-in (or restore the file it replaced, and the lines it commented out), check sshd's configuration and reload sshd, then
remove the binary, directories and user that install created, and give the directories it took over
(an existing cache or log directory, say) their owner and mode back. Files left behind that belonged
to a deleted verify user or its group are given to root. /etc/opkssh and your policy stay unless
--purge.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			fmt.Fprintln(o.Out, "Uninstalling opkssh from sshd:")
			return serverinstall.Uninstall(o, purge)
		},
	}
	serverFlags(cmd, &o)
	cmd.Flags().BoolVar(&purge, "purge", false, "also remove the policy directory")
	return cmd
}
