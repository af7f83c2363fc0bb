package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshagent"
)

// Exit codes of "opkssh status", one per certstatus.State; 1 stays "the command itself failed".
var statusExitCodes = map[certstatus.State]int{
	certstatus.Valid:    0,
	certstatus.Expiring: 2,
	certstatus.Expired:  3,
	certstatus.Missing:  4,
}

func newStatusCmd() *cobra.Command {
	var (
		keyFile      string
		minRemaining time.Duration
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Tell whether you hold a certificate that stays valid for a while",
		Long: `Tell whether you hold an opkssh certificate that remains valid for longer than --min-remaining,
for scripts and for "opkssh login --if-needed".

Without --key-file it looks at every certificate of the current login, as "login --if-needed" does:
~/.ssh/id_ecdsa-cert.pub, ~/.ssh/id_ed25519-cert.pub, those of the keys login wrote elsewhere
(--key-file; noted in ~/.ssh/opkssh-logins.json), and opkssh's identities in the ssh-agent at
$SSH_AUTH_SOCK (where an --agent-only login lives), and reports the one that lasts longest. Certificates from other OpenPubkey clients have no end of validity;
their PK token's issue time plus 24h is taken instead. Nothing is verified: only a server decides.

Exit status:
  0  a certificate remains valid for longer than --min-remaining
  2  a certificate is valid but expires within --min-remaining
  3  the certificate has expired (or is not yet valid)
  4  there is no opkssh certificate
  1  the command failed (e.g. an unreadable file)`,
		Example: `  opkssh status
  opkssh status --min-remaining 1h || opkssh login
  opkssh status --json | jq -r .valid_before`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if minRemaining < 0 {
				return fmt.Errorf("--min-remaining %s must not be negative", minRemaining)
			}
			q := session.Query{KeyFile: keyFile, Now: time.Now(), MinRemaining: minRemaining}
			if keyFile == "" {
				q.Agent, q.AgentName, _ = agentIdentities(os.Getenv(sshagent.EnvSocket), false)
			}
			cur, err := session.FindCurrent(q)
			if errors.Is(err, session.ErrNoHome) {
				return withHint(err, "pass --key-file")
			}
			if err != nil {
				return err
			}
			st := cur.Status
			out := cmd.OutOrStdout()
			if asJSON {
				err = writeStatusJSON(out, st)
			} else {
				printStatus(out, cur)
			}
			if err != nil {
				return err
			}
			if code := statusExitCodes[st.State]; code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyFile, "key-file", "", "check only this private key's PATH-cert.pub (default: every key login wrote, and the ssh-agent)")
	fl.DurationVar(&minRemaining, "min-remaining", 5*time.Minute, "how long the certificate must remain valid to count as valid")
	fl.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func printStatus(w io.Writer, cur session.Current) {
	const layout = "2006-01-02 15:04 MST"
	st := cur.Status
	switch st.State {
	case certstatus.Missing:
		fmt.Fprintf(w, "No opkssh certificate (looked at %s). Run \"opkssh login\".\n", joinPaths(cur.Looked))
		return
	case certstatus.Valid:
		fmt.Fprintf(w, "Valid: %s (issuer %s) until %s, %s from now.\n", st.Identity, st.Issuer, st.ValidBefore.Local().Format(layout), shortDuration(st.Remaining))
	case certstatus.Expiring:
		fmt.Fprintf(w, "Expiring: %s (issuer %s) until %s, only %s from now. Run \"opkssh login\".\n", st.Identity, st.Issuer, st.ValidBefore.Local().Format(layout), shortDuration(st.Remaining))
	case certstatus.Expired:
		end := "no end"
		if st.ValidBefore != nil {
			end = st.ValidBefore.Local().Format(layout)
		}
		fmt.Fprintf(w, "Expired: %s (issuer %s), valid until %s. Run \"opkssh login\".\n", st.Identity, st.Issuer, end)
	}
	if st.CIJob {
		fmt.Fprintln(w, "CI job login (GQ256): valid as long as the job's ID token; run \"opkssh login --ci\" again in the job for a new one.")
	}
	if cur.InAgent {
		fmt.Fprintf(w, "Certificate: in %s (no file)\n", st.Path)
		return
	}
	fmt.Fprintf(w, "Certificate: %s\n", st.Path)
}

func writeStatusJSON(w io.Writer, st certstatus.Status) error {
	out := struct {
		certstatus.Status
		RemainingSeconds int64 `json:"remaining_seconds"`
		ExitCode         int   `json:"exit_code"`
	}{st, int64(st.Remaining / time.Second), statusExitCodes[st.State]}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
