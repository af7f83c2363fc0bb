package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/gitsign"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

func newGitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git",
		Short: "Sign git commits and tags with your opkssh key",
	}
	cmd.AddCommand(newGitSetupCmd(), newSSHKeygenCmd())
	return cmd
}

func newGitSetupCmd() *cobra.Command {
	var global bool
	var issuer, clientID, keyFile string
	cmd := &cobra.Command{
		Use:   "setup [--global] [--issuer URL --client-id ID]",
		Short: "Configure git to sign with the opkssh key and to verify signers' OIDC identities",
		Long: `Configure git (this repository's .git/config, or with --global your ~/.gitconfig) so that
"git commit -S" and "git tag -s" sign with your opkssh key, and "git verify-commit",
"git verify-tag" and "git log --show-signature" check signatures through opkssh and name the
signer's OIDC identity. It sets:

  gpg.format                 ssh
  gpg.ssh.program            this opkssh binary (it answers git's "ssh-keygen -Y" calls)
  user.signingKey            your opkssh key (default: the valid one of ~/.ssh/id_ecdsa, id_ed25519)
  gpg.ssh.allowedSignersFile an opkssh policy naming the OP trusted to vouch for signers
  gpg.minTrustLevel          fully: verify-commit fails for a signature opkssh cannot attribute

The policy is written next to the configuration (.git/opkssh-signers.yaml, or
~/.config/opkssh/git-signers.yaml with --global). It trusts --issuer and --client-id (default:
those of your current login). Without a signers: section any identity that OP vouches for is
named; add one to accept only some (see docs/signing.md). Re-run after each "opkssh login" only
if your key path changes: the key file stays the same.`,
		Example: `  opkssh git setup
  opkssh git setup --global --issuer https://accounts.google.com --client-id 206584157355-7cbe4s640tvm7naoludob4ut1emii7sf.apps.googleusercontent.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return gitSetup(cmd, global, issuer, clientID, keyFile)
		},
	}
	cmd.Flags().BoolVar(&global, "global", false, "configure git for all your repositories (git config --global)")
	cmd.Flags().StringVar(&issuer, "issuer", "", "the OP trusted to vouch for signers (default: your login's)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "the client ID its tokens must be issued to (default: your login's)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "the opkssh private key to sign with")
	return cmd
}

func gitSetup(cmd *cobra.Command, global bool, issuer, clientID, keyFile string) error {
	key, err := loadSigningKey(keyFile)
	if err != nil {
		return err
	}
	if issuer == "" || clientID == "" {
		d := sshcert.Describe(key.Cert)
		if d.Token == nil || d.Token.Issuer == "" || len(d.Token.Audience) == 0 {
			return errors.New("cannot read the issuer and client ID of your login; pass --issuer and --client-id")
		}
		if issuer == "" {
			issuer = d.Token.Issuer
		}
		if clientID == "" {
			clientID = d.Token.Audience[0]
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return err
	}
	scope := "--local"
	var signersPath string
	if global {
		scope = "--global"
		dir, err := os.UserConfigDir()
		if err != nil {
			return err
		}
		signersPath = filepath.Join(dir, "opkssh", "git-signers.yaml")
	} else {
		out, err := exec.Command("git", "rev-parse", "--absolute-git-dir").Output()
		if err != nil {
			return errors.New("not in a git repository; run it in one, or use --global")
		}
		signersPath = filepath.Join(strings.TrimSpace(string(out)), "opkssh-signers.yaml")
	}
	if err := writeSignersPolicy(signersPath, issuer, clientID); err != nil {
		return err
	}
	keyPath, err := filepath.Abs(key.Path)
	if err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"gpg.format", "ssh"},
		{"gpg.ssh.program", self},
		{"user.signingKey", keyPath},
		{"gpg.ssh.allowedSignersFile", signersPath},
		// A good signature by a key opkssh cannot attribute is "undefined" trust to git: with
		// "fully", verify-commit and verify-tag fail for it instead of passing silently.
		{"gpg.minTrustLevel", "fully"},
	} {
		if out, err := exec.Command("git", "config", scope, kv[0], kv[1]).CombinedOutput(); err != nil {
			return fmt.Errorf("git config %s %s: %v: %s", scope, kv[0], err, out)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "git config %s %s %s\n", scope, kv[0], kv[1])
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Signers trusted: identities vouched for by %s (client %s), in %s\n", issuer, clientID, signersPath)
	fmt.Fprintln(cmd.OutOrStdout(), `Sign with "git commit -S" (or git config commit.gpgSign true); check with "git log --show-signature".`)
	return nil
}

// writeSignersPolicy writes the allowed-signers policy unless one is there (it may have been
// edited to add a signers section).
func writeSignersPolicy(path, issuer, clientID string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	content := "# Written by opkssh git setup: whose git signatures opkssh accepts (gpg.ssh.allowedSignersFile).\n" +
		"# Without a signers: section, any identity the provider vouches for is named; see docs/signing.md.\n" +
		"version: 1\nproviders:\n  git:\n    issuer: " + q(issuer) + "\n    client_ids: [" + q(clientID) + "]\n    expiration: 24h\n"
	return os.WriteFile(path, []byte(content), 0o644)
}

// newSSHKeygenCmd is what git runs as gpg.ssh.program: "opkssh -Y ..." is routed here.
func newSSHKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "ssh-keygen -Y sign|verify|find-principals|check-novalidate ...",
		Short:              "The ssh-keygen -Y subset git runs (gpg.ssh.program); also reachable as opkssh -Y ...",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			code := gitsign.Main(context.Background(), args, gitsign.Env{Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
}
