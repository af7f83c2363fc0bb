package commands

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshagent"
)

func newLogoutCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Remove the keys and certificates opkssh wrote, and its identities in the ssh-agent",
		Long: `Remove the keys and certificates that "opkssh login" wrote, and opkssh's identities in the
ssh-agent, so that this machine holds no opkssh credential any more.

Files: ~/.ssh/id_ecdsa, ~/.ssh/id_ed25519 and every key login wrote elsewhere (with --key-file;
noted in ~/.ssh/opkssh-logins.json), with their -cert.pub and .refresh files, or only --key-file
PATH, PATH-cert.pub and PATH.refresh. A key is removed only if the certificate beside it
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
			keys, err := session.KeyPaths(keyFile)
			if err != nil {
				return withHint(err, "pass --key-file")
			}
			out := cmd.OutOrStdout()
			removedFiles := false
			var removedKeys []string
			for _, k := range keys {
				r, err := session.Remove(k)
				if err != nil {
					return err
				}
				printRemoval(out, r)
				removedFiles = removedFiles || r.Removed()
				if r.Removed() {
					removedKeys = append(removedKeys, k)
				}
			}
			if home, err := session.UserKeys(); err == nil && len(removedKeys) > 0 {
				if err := home.Forget(removedKeys...); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Warning: could not update %s: %v\n", home.RecordPath(), err)
				}
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
	cmd.Flags().StringVar(&keyFile, "key-file", "", "remove only this private key and PATH-cert.pub (default: every key login wrote)")
	return cmd
}

// printRemoval says what session.Remove did with one key's files.
func printRemoval(out io.Writer, r session.Removal) {
	for _, p := range r.Left {
		fmt.Fprintf(out, "Left %s alone: opkssh did not create it.\n", p)
	}
	if r.RefreshToken != "" {
		fmt.Fprintf(out, "Removed %s (the refresh token).\n", r.RefreshToken)
	}
	switch {
	case r.Key != "" && r.Cert != "":
		fmt.Fprintf(out, "Removed %s and %s (%s).\n", r.Key, r.Cert, r.Identity)
	case r.Key != "":
		fmt.Fprintf(out, "Removed %s (%s; its certificate was already gone).\n", r.Key, r.Identity)
	case r.Cert != "":
		fmt.Fprintf(out, "Removed %s (%s; its key was already gone).\n", r.Cert, r.Identity)
	}
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

// joinPaths lists paths as "a", "a and b" or "a, b and c".
func joinPaths(paths []string) string {
	switch len(paths) {
	case 0:
		return "nothing"
	case 1:
		return paths[0]
	}
	return strings.Join(paths[:len(paths)-1], ", ") + " and " + paths[len(paths)-1]
}
