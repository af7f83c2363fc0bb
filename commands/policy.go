package commands

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opkssh-team/opkssh/internal/serverconfig"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/words"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check, list, test and import the server policy",
		Long: `Work with the server policy (` + DefaultPolicyPath + ` and the policies.d drop-ins beside it),
read exactly as "opkssh verify" reads it: the same loader, the same ownership checks.

  opkssh policy check     does the policy load? every error with its file and line
  opkssh policy list      the providers, rules and deny entries, with where each is defined
  opkssh policy test      why can (or can't) this certificate log in as this user?
  opkssh policy import    convert /etc/opk/providers and /etc/opk/auth_id of the other
                          OpenPubkey SSH implementation into a policies.yaml

"opkssh add" and "opkssh remove" edit the policy. Rules "opkssh add" does not write, by hand:

  # members of db-* groups log in as the account of the group's name
  - principals_from: groups
    principals_allowed: ["db-*"]
    provider: corp
    identities: [{email_domain: example.com}]

  # a CI identity that may run one command, and nothing else
  - principals: [deploy]
    provider: ci
    identities: [{claim: {name: repository, value: org/app}}]
    options: [restrict, 'command="/usr/local/bin/deploy"']

"opkssh policy test" shows which claim value matched which glob, and the line sshd gets with the
options; "opkssh policy check" reports a rule whose options sshd would not accept.`,
	}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyListCmd(), newPolicyTestCmd(), newPolicyImportCmd())
	return cmd
}

// policySource is where the policy commands read the policy, as verify does.
type policySource struct {
	path  string
	owner int
}

func (s *policySource) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&s.path, "policy", DefaultPolicyPath, "policy file; drop-ins are read from policies.d beside it")
	fl.IntVar(&s.owner, "policy-owner", 0, "also trust policy files owned by this uid besides root (as verify's --policy-owner)")
}

func (s *policySource) load() (*policy.Policy, error) {
	return policy.Load(serverconfig.Verify{PolicyPath: s.path, PolicyOwner: s.owner}.PolicyOptions())
}

// loadOrReport loads the policy; on failure it prints every error, one per
// line (each names its file and line), and returns exit status 1.
func (s *policySource) loadOrReport(stderr io.Writer) (*policy.Policy, error) {
	pol, err := s.load()
	if err == nil {
		return pol, nil
	}
	fmt.Fprintln(stderr, err)
	n := 1
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		n = len(joined.Unwrap())
	}
	fmt.Fprintf(stderr, "%s: the policy does not load (%s): opkssh verify denies every login until it is fixed\n", s.path, plural(n, "error", "errors"))
	return nil, exitError{code: 1}
}

// plural returns "1 rule" or "N rules".
func plural(n int, one, many string) string { return words.Count(n, one, many) }

func newPolicyListCmd() *cobra.Command {
	var (
		src       policySource
		principal string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show the providers, rules and deny entries of the policy",
		Long: `Show the policy as verify reads it (the main file and its policies.d drop-ins): the providers,
the rules and the deny entries, each with the file and line it comes from.

--principal shows only the rules that list that Unix user; deny entries are always shown, as they
apply to every user. A rule lets in anyone who matches one of its identities, if the token comes
from its provider and has every value of REQUIRE in its amr claim; a deny entry wins over every
rule. --json prints the same for scripts.`,
		Example: `  opkssh policy list
  opkssh policy list --principal root
  opkssh policy list --json | jq -r '.rules[] | select(.provider == "corp") | .principals[]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal != "" && !policy.ValidPrincipal(principal) {
				return fmt.Errorf("--principal %q is not a valid Unix user name", principal)
			}
			pol, err := src.loadOrReport(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			l := pol.List(principal)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			return printListing(cmd.OutOrStdout(), l, principal)
		},
	}
	src.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&principal, "principal", "", "show only the rules that list this Unix user")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func printListing(w io.Writer, l policy.Listing, principal string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tISSUER\tCLIENT IDS\tEXPIRATION\tDEFINED AT")
	for _, p := range l.Providers {
		name := p.Name
		if p.Broken != "" {
			name += " (UNUSABLE: see opkssh policy check)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s:%d\n", name, p.Issuer, strings.Join(p.ClientIDs, ","), p.Expiration, p.File, p.Line)
	}
	fmt.Fprintln(tw)
	if len(l.Rules) == 0 {
		if principal != "" {
			fmt.Fprintf(tw, "no rule lists principal %q: nobody can log in as %s\n", principal, principal)
		} else {
			fmt.Fprintln(tw, "no rules: nobody can log in")
		}
	} else {
		fmt.Fprintln(tw, "RULE AT\tPRINCIPALS\tPROVIDER\tIDENTITIES\tREQUIRE")
		for _, r := range l.Rules {
			var ids []string
			for _, id := range r.Identities {
				ids = append(ids, id.Text)
			}
			var conds []string
			if len(r.RequireAMR) > 0 {
				conds = append(conds, "amr "+strings.Join(r.RequireAMR, ","))
			}
			if len(r.RequireFrom) > 0 {
				conds = append(conds, "from "+strings.Join(r.RequireFrom, ","))
			}
			require := "-"
			if len(conds) > 0 {
				require = strings.Join(conds, "; ")
			}
			principals := strings.Join(r.Principals, ",")
			if r.PrincipalsFrom != "" {
				principals = fmt.Sprintf("from %s (%s)", r.PrincipalsFrom, strings.Join(r.PrincipalsAllowed, ","))
			}
			if len(r.Options) > 0 {
				require += "; options " + strings.Join(r.Options, ",")
			}
			if r.Broken != "" {
				require += " (UNUSABLE: see opkssh policy check)"
			}
			fmt.Fprintf(tw, "%s:%d\t%s\t%s\t%s\t%s\n", r.File, r.Line, principals, r.Provider, strings.Join(ids, ", "), require)
		}
	}
	if len(l.Deny) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "DENY AT\tIDENTITY\tPROVIDER")
		for _, d := range l.Deny {
			prov := "any"
			if d.Provider != "" {
				prov = d.Provider
			}
			fmt.Fprintf(tw, "%s:%d\t%s\t%s\n", d.File, d.Line, d.Text, prov)
		}
	}
	return tw.Flush()
}

type policyTestFlags struct {
	src       policySource
	principal string
	certPath  string
	cacheDir  string
	timeout   time.Duration
	now       string
	asJSON    bool
}

func newPolicyTestCmd() *cobra.Command {
	var f policyTestFlags
	cmd := &cobra.Command{
		Use:   "test --principal USER --cert FILE",
		Short: "Explain whether a certificate may log in as a user, as verify decides",
		Long: `Decide, exactly as "opkssh verify" would for sshd, whether the certificate in FILE (an
"-cert.pub" file written by "opkssh login") may log in as the Unix user USER, and explain why.

The certificate is verified in full: the OP's signature on the ID token (with keys fetched from
the OP, or from the provider's jwks_file), the audience, the key commitment, the expiration rule
and the policy. test prints the decision, the reason code that verify logs, the identity in the
token, and the policy's explanation: the rule that allowed, or for every rule that could have
applied, why each of its identities did not match.

It exits 0 if the login would be allowed and 1 if not. Nothing is written to the decision log.
The OP's keys are fetched afresh and kept in memory, unless --cache-dir names verify's key cache
(` + verifier.DefaultCacheDir + `): then run test as the verify user, so that what it writes there
stays readable for verify.

--now decides at another time (RFC 3339), e.g. to see when a login stops working.`,
		Example: `  opkssh policy test --principal root --cert /tmp/alice-cert.pub
  opkssh policy test --principal deploy --cert ~/.ssh/id_ecdsa-cert.pub --policy ./policies.yaml --json
  opkssh policy test --principal root --cert /tmp/alice-cert.pub --now 2030-01-01T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPolicyTest(cmd, f) },
	}
	fl := cmd.Flags()
	f.src.addFlags(fl)
	fl.StringVar(&f.principal, "principal", "", "the Unix user to log in as (sshd's %u)")
	fl.StringVar(&f.certPath, "cert", "", "the certificate file, e.g. ~/.ssh/id_ecdsa-cert.pub")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "verify's key cache to use; \"\" fetches the OPs' keys afresh and keeps them in memory")
	fl.DurationVar(&f.timeout, "timeout", verifier.DefaultFetchTimeout, "limit for each request to the OP")
	fl.StringVar(&f.now, "now", "", "decide at this time instead of now (RFC 3339, e.g. 2030-01-02T15:04:05Z)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON for scripts")
	_ = cmd.MarkFlagRequired("principal")
	_ = cmd.MarkFlagRequired("cert")
	return cmd
}

// testReport is what policy test prints.
type testReport struct {
	Allowed       bool     `json:"allowed"`
	Reason        string   `json:"reason"`
	Detail        string   `json:"detail"`
	Explain       []string `json:"explain,omitempty"`
	Principal     string   `json:"principal"`
	Provider      string   `json:"provider,omitempty"`
	Issuer        string   `json:"issuer,omitempty"`
	Subject       string   `json:"subject,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified *bool    `json:"email_verified,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	TokenVerified bool     `json:"token_verified"`
	Fingerprint   string   `json:"fingerprint,omitempty"`
	Keys          string   `json:"keys,omitempty"`
	KeysNote      string   `json:"keys_note,omitempty"`
	Line          string   `json:"authorized_keys_line,omitempty"`
}

func runPolicyTest(cmd *cobra.Command, f policyTestFlags) error {
	now := time.Now()
	if f.now != "" {
		t, err := time.Parse(time.RFC3339, f.now)
		if err != nil {
			return fmt.Errorf("--now %q is not an RFC 3339 time; write e.g. 2030-01-02T15:04:05Z", f.now)
		}
		now = t
	}
	cert, err := sshcert.ReadCertFile(f.certPath)
	if err != nil {
		return fmt.Errorf("--cert: %w", err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*f.timeout)
	defer cancel()
	opts := verifier.Options{
		LoadPolicy: f.src.load,
		Keys:       &verifier.Cache{Dir: f.cacheDir, Fetcher: verifier.Fetcher{Timeout: f.timeout}},
		Now:        func() time.Time { return now },
	}
	req := verifier.Request{Principal: f.principal, KeyType: cert.Type(), CertB64: base64.StdEncoding.EncodeToString(cert.Marshal())}
	res := verifier.Verify(ctx, opts, req)

	rep := testReport{
		Allowed: res.Allowed, Reason: res.Reason, Detail: res.Detail, Explain: res.Explain, Principal: f.principal,
		Provider: res.Provider, Issuer: res.Issuer, Subject: res.Subject, Email: res.Email, TokenVerified: res.TokenVerified,
		Fingerprint: res.Fingerprint, Keys: res.Keys.Source, KeysNote: res.Keys.Note, Line: res.Line,
	}
	if tok := sshcert.Describe(cert).Token; tok != nil {
		rep.EmailVerified, rep.Groups = tok.EmailVerified, tok.Groups
		if rep.Issuer == "" { // verify stopped before reading the token: show what it claims
			rep.Issuer, rep.Subject, rep.Email = tok.Issuer, tok.Subject, tok.Email
		}
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printTestReport(out, rep)
	}
	if !res.Allowed {
		return exitError{code: 1}
	}
	return nil
}

func printTestReport(w io.Writer, r testReport) {
	decision := "DENY"
	if r.Allowed {
		decision = "ALLOW"
	}
	fmt.Fprintf(w, "decision:  %s login as %s (reason %s)\n", decision, r.Principal, r.Reason)
	// A policy error has a line per problem: keep them in the column.
	fmt.Fprintf(w, "detail:    %s\n", strings.ReplaceAll(r.Detail, "\n", "\n           "))
	if r.Issuer != "" {
		state := "verified (OP signature, audience, key commitment)"
		if !r.TokenVerified {
			state = "NOT verified, as claimed by the certificate"
		}
		fmt.Fprintf(w, "token:     %s\n", state)
		fmt.Fprintf(w, "  issuer:  %s", r.Issuer)
		if r.Provider != "" {
			fmt.Fprintf(w, " (provider %s)", r.Provider)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  sub:     %s\n", r.Subject)
		if r.Email != "" {
			verified := "absent"
			if r.EmailVerified != nil {
				verified = strconv.FormatBool(*r.EmailVerified)
			}
			fmt.Fprintf(w, "  email:   %s (email_verified: %s)\n", r.Email, verified)
		}
		if len(r.Groups) > 0 {
			fmt.Fprintf(w, "  groups:  %s\n", strings.Join(r.Groups, ", "))
		}
	}
	if r.Fingerprint != "" {
		fmt.Fprintf(w, "key:       %s\n", r.Fingerprint)
	}
	if r.Keys != "" {
		fmt.Fprintf(w, "OP keys:   %s", r.Keys)
		if r.KeysNote != "" {
			fmt.Fprintf(w, " (%s)", r.KeysNote)
		}
		fmt.Fprintln(w)
	}
	if len(r.Explain) > 0 {
		fmt.Fprintln(w, "policy:")
		for _, line := range r.Explain {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if r.Line != "" {
		fmt.Fprintf(w, "sshd gets: %s\n", r.Line)
	}
}

func newPolicyImportCmd() *cobra.Command {
	var (
		opts policy.ImportOptions
		out  string
	)
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert the other OpenPubkey SSH implementation's providers and auth_id files",
		Long: `Convert the configuration of the other OpenPubkey SSH implementation (the previous tool) into a
policies.yaml: /etc/opk/providers ("issuer client_id expiration" per line) becomes the providers,
/etc/opk/auth_id ("principal identity issuer" per line) the rules, one per user and provider.
Certificates of both tools work with both, so users need not log in again.

The aim is the same decisions. Identity forms:
  alice@example.com                 email (ignoring case)
  248289761001 (no '@', no prefix)  sub (exact)
  oidc:groups:NAME                  group
  oidc:sub:ID                       sub
  oidc:CLAIM:VALUE                  claim (CLAIM may be in double quotes, e.g. a URL)
  oidc-match-end:email:@DOMAIN      email_domain (exactly that domain)
  repo:SUB without * ? [            sub (exact)
Expirations 12h, 24h and 48h stay, 1week becomes 168h, oidc stays; oidc_refreshed becomes oidc
and never becomes 720h (logins end sooner than before; a note says so).

A row that cannot be expressed exactly is left out, never widened: globs, a suffix that is not
"@" and a domain (it would match lookalike domains), a dotted claim name, oidc:email: (it was
case-sensitive), claims every token carries, user names opkssh refuses, issuers missing from the
providers file. Each is reported on
stderr with its file, line and the reason, and listed in the header of the output. The previous
tool also compared an address with the token's sub and folded case with Unicode rules; the new
policy does not, which may refuse a login it allowed.

The previous tool did not check email_verified, so the providers that have email identities get
require_email_verified: false, with a comment; --require-email-verified keeps opkssh's default
(email identities need email_verified: true) at the risk of refusing users whose OP does not send
it (Microsoft Entra ID does not). Its deny lists (config.yml), policy plugins and the users'
~/.opk/auth_id files are not imported.

The policy goes to stdout, or with --out to a new file (mode 0644; an existing file is never
overwritten). The header records the time of the import, or $SOURCE_DATE_EPOCH if set.
Exit status: 0 if every row was converted, 2 if some were left out (the output is still a
valid policy), 1 on an error (nothing written).`,
		Example: `  opkssh policy import > /tmp/policies.yaml
  opkssh policy import --providers ./providers --auth-id ./auth_id --out /etc/opkssh/policies.yaml
  opkssh policy check --policy /etc/opkssh/policies.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now, err := importTime()
			if err != nil {
				return err
			}
			opts.Now = now
			stderr := cmd.ErrOrStderr()
			res, err := policy.Import(opts)
			for _, s := range res.Skipped {
				fmt.Fprintf(stderr, "%s: not converted: %s: %s\n", s.Pos, s.Row, s.Msg)
			}
			for _, n := range res.Notes {
				fmt.Fprintf(stderr, "%s: note: %s: %s\n", n.Pos, n.Row, n.Msg)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w; name the previous tool's files with --providers and --auth-id", err)
			}
			if err != nil {
				return err
			}
			if out == "" {
				if _, err := cmd.OutOrStdout().Write(res.YAML); err != nil {
					return err
				}
			} else if err := policy.WriteNewFile(out, res.YAML); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			summary := fmt.Sprintf("Imported %s and %s (%s)", plural(res.Providers, "provider", "providers"),
				plural(res.Rules, "rule", "rules"), plural(res.Identities, "identity", "identities"))
			if out != "" {
				summary += " into " + out
			}
			if len(res.Skipped) == 0 {
				fmt.Fprintln(stderr, summary)
				return nil
			}
			fmt.Fprintf(stderr, "%s; %s not converted, listed above and in the header: review them\n",
				summary, plural(len(res.Skipped), "row was", "rows were"))
			return exitError{code: 2}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.ProvidersFile, "providers", "/etc/opk/providers", "the previous tool's providers file")
	fl.StringVar(&opts.AuthIDFile, "auth-id", "/etc/opk/auth_id", "the previous tool's auth_id file")
	fl.StringVar(&out, "out", "", "write the policy to this new file instead of stdout")
	fl.BoolVar(&opts.RequireEmailVerified, "require-email-verified", false, "match email identities only when the token says email_verified: true")
	return cmd
}

// importTime is now, or $SOURCE_DATE_EPOCH (the reproducible-builds
// convention for dates written into generated files) when set.
func importTime() (time.Time, error) {
	v, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok {
		return time.Now(), nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("SOURCE_DATE_EPOCH must be seconds since 1970 (e.g. 1735787045); unset it to use the current time")
	}
	return time.Unix(sec, 0), nil
}
