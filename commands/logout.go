package commands

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

func newLogoutCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Remove the keys and certificates opkssh wrote, and its identities in the ssh-agent",
		Long: `Remove the keys and certificates that "opkssh login" wrote, and opkssh's identities in the
ssh-agent, so that this machine holds no opkssh credential any more.

Files: ~/.ssh/id_ecdsa and ~/.ssh/id_ed25519 with their -cert.pub and .refresh files, or only
--key-file PATH, PATH-cert.pub and PATH.refresh. A key is removed only if the certificate beside it
carries an OpenPubkey PK token, or, with no certificate beside it, if the key's comment starts with
"opkssh:" (opkssh writes that comment) and no PATH.pub sits beside it — the rule login applies
before it overwrites a key. Any
other key or certificate is left alone, and said so. The refresh token goes first (it lives
longest), then the key, then the certificate.

ssh-agent: when SSH_AUTH_SOCK is set, every identity whose comment starts with "opkssh:" is removed
(whatever --key-file says); other identities stay. If the agent cannot be reached, the files are
still removed and logout exits 1; unset SSH_AUTH_SOCK to leave the agent out.

The OP's session in your browser is not ended: that is the OP's business, on its own web page.`,
		Example: `  opkssh logout
  opkssh logout --key-file ~/.ssh/id_opkssh
  SSH_AUTH_SOCK= opkssh logout     # files only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := logoutKeyPaths(keyFile)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			removedFiles := false
			for _, k := range keys {
				removed, err := removeKeyPair(out, k)
				if err != nil {
					return err
				}
				removedFiles = removedFiles || removed
			}
			removedIDs, agentErr := removeFromAgent(out, os.Getenv(sshagent.EnvSocket))
			if !removedFiles && removedIDs == 0 && agentErr == nil {
				fmt.Fprintf(out, "Nothing to remove: no opkssh key or certificate at %s", joinPaths(keys))
				if os.Getenv(sshagent.EnvSocket) != "" {
					fmt.Fprint(out, ", and no opkssh identity in the ssh-agent")
				}
				fmt.Fprintln(out, ".")
			}
			return agentErr
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "remove only this private key and PATH-cert.pub (default: ~/.ssh/id_ecdsa and ~/.ssh/id_ed25519)")
	return cmd
}

// logoutKeyPaths lists the private keys logout looks at: keyFile, or the ones login writes by default.
func logoutKeyPaths(keyFile string) ([]string, error) {
	if keyFile != "" {
		return []string{keyFile}, nil
	}
	var keys []string
	for _, keyType := range []string{"ecdsa", "ed25519"} {
		k, err := loginKeyPath(loginFlags{keyType: keyType})
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// removeKeyPair removes keyPath and its certificate if opkssh made them, and reports whether it
// removed anything. Files opkssh did not make are left and mentioned.
func removeKeyPair(out io.Writer, keyPath string) (bool, error) {
	certPath := sshcert.CertPath(keyPath)
	keyExists, err := exists(keyPath)
	if err != nil {
		return false, err
	}
	certExists, err := exists(certPath)
	if err != nil {
		return false, err
	}
	if !keyExists && !certExists {
		return removeRefreshToken(out, keyPath, false)
	}
	cert, _ := sshcert.ReadCertFile(certPath)
	ours := false
	if cert != nil {
		_, ours = cert.Permissions.Extensions[sshcert.ExtensionPKToken]
	}
	if keyExists {
		// The test login applies before it overwrites a key.
		if ours, err = sshcert.OwnedByOpkssh(keyPath); err != nil {
			return false, err
		}
	}
	if !ours {
		left := keyPath
		if !keyExists {
			left = certPath
		}
		fmt.Fprintf(out, "Left %s alone: opkssh did not create it.\n", left)
		return false, nil
	}
	var who string
	if cert != nil {
		who = certstatus.Of(cert, time.Now(), 0).Identity
	} else {
		// The comment is the file's text, not a verified identity: quote it.
		who, _ = sshcert.OpksshKeyIdentity(keyPath)
		who = strconv.Quote(who)
	}
	if _, err := removeRefreshToken(out, keyPath, true); err != nil {
		return false, err
	}
	// Then the key: a certificate without its key is still recognised as opkssh's, and so is a key
	// without its certificate if it carries opkssh's comment.
	if keyExists {
		if err := os.Remove(keyPath); err != nil {
			return false, err
		}
	}
	switch {
	case !certExists:
		fmt.Fprintf(out, "Removed %s (%s; its certificate was already gone).\n", keyPath, who)
		return true, nil
	case !keyExists:
		if err := os.Remove(certPath); err != nil {
			return true, err
		}
		fmt.Fprintf(out, "Removed %s (%s; its key was already gone).\n", certPath, who)
	default:
		if err := os.Remove(certPath); err != nil {
			return true, err
		}
		fmt.Fprintf(out, "Removed %s and %s (%s).\n", keyPath, certPath, who)
	}
	return true, nil
}

// removeRefreshToken removes the refresh token file of the key at keyPath, if there is one: always
// when the key pair is opkssh's (ours), else only if opkssh wrote the file.
func removeRefreshToken(out io.Writer, keyPath string, ours bool) (bool, error) {
	path := provider.RefreshTokenPath(keyPath)
	if ok, err := exists(path); !ok || err != nil {
		return false, err
	}
	if _, err := provider.LoadRefreshToken(path); errors.Is(err, provider.ErrNotRefreshTokenFile) && !ours {
		fmt.Fprintf(out, "Left %s alone: opkssh did not create it.\n", path)
		return false, nil
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	fmt.Fprintf(out, "Removed %s (the refresh token).\n", path)
	return true, nil
}

// removeFromAgent removes opkssh's identities from the agent at sock, if one is set.
func removeFromAgent(out io.Writer, sock string) (int, error) {
	if sock == "" {
		return 0, nil
	}
	conn, err := sshagent.Dial(sock)
	if err != nil {
		return 0, fmt.Errorf("%v; opkssh's identities in it, if any, were not removed (they expire with their certificates). Unset SSH_AUTH_SOCK to leave the agent out", err)
	}
	defer conn.Close()
	removed, err := sshagent.Remove(conn, nil)
	printRemovedFromAgent(out, removed)
	return len(removed), err
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func joinPaths(paths []string) string {
	switch len(paths) {
	case 1:
		return paths[0]
	case 2:
		return paths[0] + " and " + paths[1]
	}
	return fmt.Sprint(paths)
}
