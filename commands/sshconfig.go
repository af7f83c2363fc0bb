package commands

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshconfig"
)

func newSSHConfigCmd() *cobra.Command {
	var (
		o                  sshconfig.Options
		install, uninstall bool
		keyFile, keyType   string
	)
	cmd := &cobra.Command{
		Use:   "ssh-config",
		Short: "Print, or add to ~/.ssh/config, a block that makes ssh refresh the certificate before connecting",
		Long: `Print a block for ~/.ssh/config, or add it with --install, that makes ssh run
"opkssh login --if-needed --quiet" before it connects, so that plain "ssh host" renews an
expired or expiring certificate (the browser, or the device code with --device in the
configuration, appears only then):

  # BEGIN opkssh (managed by "opkssh ssh-config --install", which replaces this block)
  # Added by opkssh: refresh the certificate before connecting
  Match host * exec "/usr/local/bin/opkssh login --if-needed --quiet corp"
  # Ends the Match above: what follows applies to every host again.
  Match all
  # END opkssh

Which key: --key-file and --key-type are login's, and the block's login keeps that key up to date.
Without --key-file the block takes the file of your current login (as "opkssh status" finds it),
or the default file of the key type; a default key that opkssh did not create (your own
~/.ssh/id_ecdsa) is refused here, rather than at every ssh. For a file ssh does not read by
itself, the block adds a "Match host" for the same hosts, without exec, with IdentityFile and
CertificateFile lines naming the key and its certificate (they add to yours; they replace nothing).

How ssh runs it: while reading its configuration, before connecting, with "$SHELL -c" and stdin
from /dev/null. The command's output never reaches ssh's stdout, and its messages go to ssh's
stderr, so login prompts are seen. If the login fails, the Match simply does not apply and ssh
connects with the certificate it has. "ssh -G" runs the command too (OpenSSH 9.2).

The block runs this opkssh binary by the path it was started with (symlinks are kept, so that an
upgrade that moves the real file keeps working); --opkssh names another.

--install adds the block to ~/.ssh/config, or replaces the opkssh block already there (found by
its BEGIN and END lines), so running it again changes nothing. Before a change the file is saved
as ~/.ssh/config.opkssh-backup; the new file has mode 0600 (~/.ssh is created with 0700 if
missing). A symlinked config file is written through the link. --uninstall removes the block.`,
		Example: `  opkssh ssh-config                                  # print the block
  opkssh ssh-config --install                        # add it to ~/.ssh/config
  opkssh ssh-config --install --provider corp --host '*.corp.example.com'
  opkssh ssh-config --install --key-file ~/.ssh/id_opkssh   # when ~/.ssh/id_ecdsa is your own key
  opkssh ssh-config --uninstall`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if install && uninstall {
				return fmt.Errorf("--install and --uninstall do not go together")
			}
			if uninstall {
				return runSSHConfigUninstall(cmd)
			}
			if err := checkSSHConfigProvider(cmd, o.Provider); err != nil {
				return err
			}
			if err := sshConfigKey(cmd, &o, keyFile, keyType); err != nil {
				return err
			}
			if o.Opkssh == "" {
				path, err := opksshPath()
				if err != nil {
					return err
				}
				o.Opkssh = path
			} else if !filepath.IsAbs(o.Opkssh) {
				return fmt.Errorf("--opkssh %q must be an absolute path: ssh runs it from any directory", o.Opkssh)
			}
			block, err := sshconfig.Block(o)
			if err != nil {
				return err
			}
			if !install {
				fmt.Fprint(cmd.OutOrStdout(), block)
				return nil
			}
			return runSSHConfigInstall(cmd, block)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Host, "host", "*", "refresh only before connecting to these hosts (an ssh_config pattern list, e.g. '*.corp.example.com,!bastion')")
	fl.StringVar(&o.Provider, "provider", "", "provider of the configuration file to log in with (default: its default provider)")
	fl.BoolVar(&o.Agent, "agent", false, "log in with --agent: keep the key and certificate in the ssh-agent too")
	fl.StringVar(&keyFile, "key-file", "", "the private key the login keeps up to date, as for login; the block also makes ssh use it (default: where your current login is, else ~/.ssh/id_ecdsa)")
	fl.StringVar(&keyType, "key-type", "", "key type of a new login, as for login: ecdsa or ed25519")
	fl.StringVar(&o.Opkssh, "opkssh", "", "absolute path of the opkssh binary ssh runs (default: this one, as it was started)")
	fl.BoolVar(&install, "install", false, "add the block to ~/.ssh/config, replacing an earlier opkssh block")
	fl.BoolVar(&uninstall, "uninstall", false, "remove the opkssh block from ~/.ssh/config")
	return cmd
}

// checkSSHConfigProvider makes sure the login the block runs names an OP: a block that fails on
// every connection would only print errors.
func checkSSHConfigProvider(cmd *cobra.Command, name string) error {
	file, err := loadClientConfig(os.Getenv)
	if err != nil {
		return err
	}
	if name != "" {
		_, err := file.Provider(name)
		return err
	}
	if file.Default == "" && os.Getenv("OPKSSH_PROVIDER") == "" && os.Getenv("OPKSSH_ISSUER") == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "Note: %s names no default provider, so the login in this block needs --provider, or OPKSSH_PROVIDER or OPKSSH_ISSUER in ssh's environment.\n", file.Path)
	}
	return nil
}

// sshConfigKey settles which key the block's login keeps up to date, as login would with the same
// --key-file and --key-type: the named file, else the current login's, else the default file of
// the key type. A key file ssh does not look at by itself goes into the block (o.KeyFile), so that
// ssh uses it; a key that is not opkssh's is refused now, rather than at every ssh.
func sshConfigKey(cmd *cobra.Command, o *sshconfig.Options, keyFile, keyType string) error {
	q := session.Query{Now: time.Now()}
	if keyType != "" {
		t, err := session.ParseKeyType(keyType)
		if err != nil {
			return err
		}
		q.KeyType, o.KeyType = t, string(t)
	}
	if keyFile != "" {
		abs, err := filepath.Abs(keyFile)
		if err != nil {
			return err
		}
		q.KeyFile = abs
	}
	cur, err := session.FindCurrent(q)
	if errors.Is(err, session.ErrNoHome) {
		return nil // the block's login will say so
	}
	if err != nil {
		return err
	}
	if cur.Target == "" {
		return nil // the current login lives in the agent, where ssh finds it
	}
	if err := session.CheckNotForeign(cur.Target); err != nil {
		return err
	}
	home, err := session.UserKeys()
	if err == nil && cur.Target == home.KeyPath(cur.TargetType) {
		return nil // ssh reads its default key files by itself
	}
	o.KeyFile = cur.Target
	if keyFile == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "Note: the block keeps %s up to date, where your current login is (--key-file names another).\n", cur.Target)
	}
	return nil
}

func runSSHConfigInstall(cmd *cobra.Command, block string) error {
	path, err := userSSHConfigPath()
	if err != nil {
		return err
	}
	res, err := sshconfig.Install(path, block)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	switch {
	case !res.Changed:
		fmt.Fprintf(out, "%s already holds this opkssh block; nothing changed.\n", res.Path)
		return nil
	case res.HadBlock:
		fmt.Fprintf(out, "Replaced the opkssh block in %s.\n", res.Path)
	default:
		fmt.Fprintf(out, "Added the opkssh block to %s.\n", res.Path)
	}
	if res.Backup != "" {
		fmt.Fprintf(out, "The previous version is saved as %s.\n", res.Backup)
	}
	return nil
}

func runSSHConfigUninstall(cmd *cobra.Command) error {
	path, err := userSSHConfigPath()
	if err != nil {
		return err
	}
	res, err := sshconfig.Uninstall(path)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if !res.Changed {
		fmt.Fprintf(out, "%s holds no opkssh block; nothing changed.\n", res.Path)
		return nil
	}
	fmt.Fprintf(out, "Removed the opkssh block from %s.\nThe previous version is saved as %s.\n", res.Path, res.Backup)
	return nil
}

func userSSHConfigPath() (string, error) {
	keys, err := session.UserKeys()
	if err != nil {
		return "", err
	}
	return keys.SSHConfig(), nil
}

// opksshPath is the absolute path this binary was started by. Symlinks are not resolved: a
// package manager's stable link (/usr/local/bin/opkssh → …/Cellar/opkssh/1.2/bin/opkssh) survives
// upgrades, the versioned target does not.
func opksshPath() (string, error) {
	arg0 := os.Args[0]
	if !strings.Contains(arg0, "/") {
		if p, err := exec.LookPath(arg0); err == nil {
			arg0 = p
		} else if arg0, err = os.Executable(); err != nil {
			return "", fmt.Errorf("cannot tell where this opkssh binary is (%v); pass --opkssh PATH", err)
		}
	}
	return filepath.Abs(arg0)
}
