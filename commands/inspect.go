package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [CERT_FILE]",
		Short: "Show what a certificate and its PK token say (verifies nothing)",
		Long: `Show the certificate and the PK token inside it: identity, issuer, audience, issue and expiry
times, key fingerprint and validity, and every other claim of the ID token (amr, auth_time and
the OP's custom claims), which claim rules of the server policy can use. --json prints the same,
with the whole payload under pk_token.claims and "verified": false.

inspect VERIFIES NOTHING: it shows what the certificate claims. Only "opkssh verify" on a server,
with the OP's keys and its policy, decides whether the claims are true.

Without CERT_FILE it reads ~/.ssh/id_ecdsa-cert.pub, or else ~/.ssh/id_ed25519-cert.pub.`,
		Example: `  opkssh inspect
  opkssh inspect ~/.ssh/id_ed25519-cert.pub --json | jq .pk_token.email`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			} else {
				p, err := defaultCertPath()
				if err != nil {
					return err
				}
				path = p
			}
			cert, err := sshcert.ReadCertFile(path)
			if err != nil {
				return err
			}
			d := sshcert.Describe(cert)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			printDescription(cmd.OutOrStdout(), path, d, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// defaultCertPath is the certificate of the current login (as "opkssh status" finds it), else
// the first default key's certificate file, whatever it holds.
func defaultCertPath() (string, error) {
	keys, err := session.UserKeys()
	if err != nil {
		return "", withHint(err, "name the certificate file")
	}
	if cur, err := session.FindCurrent(session.Query{Now: time.Now()}); err == nil && cur.Key != "" {
		return sshcert.CertPath(cur.Key), nil
	}
	p, err := keys.FirstCert()
	if err != nil {
		return "", withHint(err, `run "opkssh login" or name the file`)
	}
	return p, nil
}

func printDescription(w io.Writer, path string, d sshcert.Description, now time.Time) {
	const layout = "2006-01-02 15:04:05 MST"
	fmt.Fprintf(w, "Certificate %s\n", path)
	fmt.Fprintln(w, "  (nothing below is verified; only a server's \"opkssh verify\" decides)")
	fmt.Fprintf(w, "  Key:          %s %s\n", d.KeyType, d.Fingerprint)
	fmt.Fprintf(w, "  Key ID:       %s\n", d.KeyID)
	fmt.Fprintf(w, "  Principals:   %s\n", strings.Join(d.Principals, ", "))
	fmt.Fprintf(w, "  Self-signed:  %v\n", d.SelfSigned)
	validity := "from " + d.ValidAfter.Local().Format(layout) + " on, no end"
	if d.ValidAfter.Unix() == 0 {
		validity = "always (no start or end)"
	}
	if d.ValidBefore != nil {
		state := "valid"
		switch {
		case now.After(*d.ValidBefore):
			state = "EXPIRED"
		case now.Before(d.ValidAfter):
			state = "not yet valid"
		default:
			state = fmt.Sprintf("valid, %s left", shortDuration(d.ValidBefore.Sub(now)))
		}
		validity = fmt.Sprintf("%s to %s (%s)", d.ValidAfter.Local().Format(layout), d.ValidBefore.Local().Format(layout), state)
	}
	fmt.Fprintf(w, "  Validity:     %s\n", validity)
	exts := append([]string(nil), d.Extensions...)
	sort.Strings(exts)
	fmt.Fprintf(w, "  Extensions:   %s\n", strings.Join(exts, ", "))
	opts := make([]string, 0, len(d.CriticalOptions))
	for name, value := range d.CriticalOptions {
		opts = append(opts, fmt.Sprintf("%s %q", name, value))
	}
	sort.Strings(opts)
	for _, o := range opts {
		fmt.Fprintf(w, "  Restriction:  %s (sshd enforces it)\n", o)
	}
	if d.Token == nil {
		fmt.Fprintf(w, "PK token: none (%s)\n", d.TokenError)
		return
	}
	t := d.Token
	fmt.Fprintf(w, "PK token (%d bytes, OP signature %s)\n", t.Size, t.Algorithm)
	fmt.Fprintf(w, "  Issuer:       %s\n", t.Issuer)
	fmt.Fprintf(w, "  Subject:      %s\n", t.Subject)
	if t.Email != "" {
		verified := "unknown"
		if t.EmailVerified != nil {
			verified = fmt.Sprint(*t.EmailVerified)
		}
		fmt.Fprintf(w, "  Email:        %s (verified: %s)\n", t.Email, verified)
	} else {
		fmt.Fprintln(w, "  Email:        none in the ID token")
	}
	if len(t.Groups) > 0 {
		fmt.Fprintf(w, "  Groups:       %s\n", strings.Join(t.Groups, ", "))
	}
	fmt.Fprintf(w, "  Audience:     %s\n", strings.Join(t.Audience, ", "))
	if t.IssuedAt != nil {
		fmt.Fprintf(w, "  Issued at:    %s\n", t.IssuedAt.Local().Format(layout))
	}
	if t.Expires != nil && t.Algorithm == "GQ256" {
		fmt.Fprintf(w, "  ID token exp: %s (a CI job's login ends here on every server)\n", t.Expires.Local().Format(layout))
		fmt.Fprintln(w, "  CI job:       the OP's RSA signature is replaced by a GQ256 proof of it, so the certificate holds no ID token anyone could replay")
	} else if t.Expires != nil {
		fmt.Fprintf(w, "  ID token exp: %s (servers may allow longer, e.g. 24h from issue)\n", t.Expires.Local().Format(layout))
	}
	printOtherClaims(w, t)
	if t.Email == "" {
		printNoEmail(w, t.Subject)
	}
}

// printOtherClaims shows the rest of the ID token payload (amr, auth_time, custom claims), which
// claim rules of the policy can use. Numbers that look like times are shown as times too.
func printOtherClaims(w io.Writer, t *sshcert.TokenInfo) {
	names := t.OtherClaims()
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(w, "  Other claims (unverified, as the OP sent them):")
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		v := compactJSON(t.Claims[n])
		if n == "auth_time" || n == "nbf" || n == "updated_at" {
			var sec float64
			if json.Unmarshal(t.Claims[n], &sec) == nil && sec > 0 && sec < 1e11 {
				v += " (" + time.Unix(int64(sec), 0).Local().Format("2006-01-02 15:04:05 MST") + ")"
			}
		}
		fmt.Fprintf(w, "    %-*s %s\n", width+1, n+":", v)
	}
}

// compactJSON prints a claim's value on one line, limited to 200 characters.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

// printNoEmail explains a login without email: servers only see what the ID token says, and
// some OPs send email at their userinfo endpoint only.
func printNoEmail(w io.Writer, sub string) {
	fmt.Fprintf(w, `Note: without email, servers identify this login by its subject only: policy entries
  "sub:%[1]s" match it ("opkssh add PRINCIPAL sub:%[1]s PROVIDER"); email and domain entries
  cannot. Some OPs send email only from their userinfo endpoint, which servers never ask.
  To get email into the ID token: request the "email" scope (login does by default; check
  --scopes and the provider's scopes in the configuration file), and have the OP put the claim
  in the ID token (Keycloak: the email mapper's "Add to ID token"; Zitadel: the application's
  "User Info inside ID Token"; Microsoft Entra: the optional claim "email" for the ID token).
  See "Email and the ID token" in the README.
`, sub)
}
