package commands

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/signing"
)

func newSignCmd() *cobra.Command {
	var namespace, keyFile string
	cmd := &cobra.Command{
		Use:   "sign [-n NAMESPACE] FILE...",
		Short: "Sign files with your opkssh key; the signature names your OIDC identity",
		Long: `Sign each FILE with the key of your current opkssh login and write the signature to FILE.sig.
With "-" or no FILE, sign standard input and write the signature to standard output.

The signature is OpenSSH's (SSHSIG, as "ssh-keygen -Y sign -f KEY-cert.pub" makes it) and embeds
your opkssh certificate, whose PK token says, signed by your OpenID Provider, who you are. Anyone
can check it with "opkssh verify-signature" without knowing your key in advance; OpenSSH's
"ssh-keygen -Y verify" can check it too, as a certificate signed by itself.

The namespace (default "file") says what the signature is for; a verifier asks for one, so a
signature made for one purpose is refused for another. The certificate must be valid now: run
"opkssh login" first. See docs/signing.md for what a signature proves, and for how long.`,
		Example: `  opkssh sign release.tar.gz                 # writes release.tar.gz.sig
  opkssh sign -n deploy-manifest manifest.yaml
  git archive HEAD | opkssh sign - > head.tar.sig`,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := loadSigningKey(keyFile)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				args = []string{"-"}
			}
			for _, name := range args {
				if err := signOne(cmd, key, namespace, name); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", signing.DefaultNamespace, "what the signature is for (a verifier must ask for the same)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "private key to sign with, next to its KEY-cert.pub (default: the valid one of ~/.ssh/id_ecdsa, ~/.ssh/id_ed25519)")
	return cmd
}

func signOne(cmd *cobra.Command, key *signing.Key, namespace, name string) error {
	if name == "-" {
		sig, err := signing.Sign(key, namespace, cmd.InOrStdin())
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(sig)
		return err
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sig, err := signing.Sign(key, namespace, f)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.WriteFile(name+".sig", sig, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Signed %s as %s: %s.sig\n", name, keyIdentity(key), name)
	return nil
}

// loadSigningKey finds the key to sign with: keyFile, or the default key whose certificate is
// valid (as "opkssh status" chooses).
func loadSigningKey(keyFile string) (*signing.Key, error) {
	now := time.Now()
	if keyFile == "" {
		paths, err := session.KeyPaths("")
		if err != nil {
			return nil, err
		}
		st, err := session.Status(paths, now, 0)
		if err != nil {
			return nil, err
		}
		if st.State == certstatus.Missing {
			return nil, errors.New("no opkssh certificate in ~/.ssh (id_ecdsa-cert.pub, id_ed25519-cert.pub); run \"opkssh login\" or pass --key-file")
		}
		keyFile = strings.TrimSuffix(st.Path, "-cert.pub")
	}
	return signing.LoadKey(keyFile, now)
}

func keyIdentity(k *signing.Key) string {
	if id := strings.TrimSpace(k.Cert.KeyId); id != "" {
		return id
	}
	return "you"
}
