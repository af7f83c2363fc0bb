package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/session"
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

Without --key-file it looks at ~/.ssh/id_ecdsa-cert.pub and ~/.ssh/id_ed25519-cert.pub and reports
the one that lasts longest. Certificates from other OpenPubkey clients have no end of validity;
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
			keys, err := session.KeyPaths(keyFile)
			if err != nil {
				return withHint(err, "pass --key-file")
			}
			paths := session.CertPaths(keys)
			st, err := session.Status(keys, time.Now(), minRemaining)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				err = writeStatusJSON(out, st)
			} else {
				printStatus(out, st, paths)
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
	fl.StringVar(&keyFile, "key-file", "", "private key whose PATH-cert.pub to check (default: ~/.ssh/id_ecdsa, ~/.ssh/id_ed25519)")
	fl.DurationVar(&minRemaining, "min-remaining", 5*time.Minute, "how long the certificate must remain valid to count as valid")
	fl.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func printStatus(w io.Writer, st certstatus.Status, looked []string) {
	const layout = "2006-01-02 15:04 MST"
	switch st.State {
	case certstatus.Missing:
		fmt.Fprintf(w, "No opkssh certificate (looked at %s). Run \"opkssh login\".\n", strings.Join(looked, " and "))
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
