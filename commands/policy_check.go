package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// discoveryTimeout bounds policy check's look at every OP's discovery document.
const discoveryTimeout = 5 * time.Second

func newPolicyCheckCmd() *cobra.Command {
	var (
		src     policySource
		offline bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the policy loads, as verify would load it",
		Long: `Load the policy the way "opkssh verify" does and report the result.

If it loads, check prints one line and exits 0:

  ok: 2 providers, 5 rules, 1 deny entry from /etc/opkssh/policies.yaml, /etc/opkssh/policies.d/ci.yaml

Otherwise it prints every error on stderr, each with its file and line, and exits 1: verify denies
every login until they are fixed. The errors of provider blocks are among them. A provider whose own
block has an error does not stop the others, but its users cannot log in: check reports it as a
warning and exits 1 too. So does a jwks_file or ca_file that verify would refuse: one that is
missing, does not parse, or that a user other than root (or the --policy-owner uid) could write, in
itself or in any directory above it. And so does a rule with an error of its own (options sshd would
not accept), which can never let anyone in while the other rules work.

Then check fetches each OP's discovery document, as verify does, and compares the issuer it names
with the policy's (they must be equal character for character, or verify never gets the OP's keys):
a difference is a warning, and exit 1. An OP that cannot be reached within 5 seconds is noted and not
held against the policy (a server may reach it through a network this one lacks); --offline skips
the check. Rules that repeat another rule, and claim rules that let in everyone, are warnings
that do not change the exit status.

--json prints the same report as a JSON object on stdout, with the same exit status.

Files must be owned by root (or the --policy-owner uid) and not writable by group or others, as
for verify. Run check after every hand edit, before logging out of the server.`,
		Example: `  opkssh policy check
  opkssh policy check --policy ./policies.yaml --policy-owner "$(id -u)" --offline
  opkssh policy check --json | jq -r '.warnings[]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := runPolicyCheck(cmd.Context(), src, offline)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				r.print(cmd.OutOrStdout(), cmd.ErrOrStderr(), src.path)
			}
			if !r.OK {
				return exitError{code: 1}
			}
			return nil
		},
	}
	src.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&offline, "offline", false, "do not fetch the OPs' discovery documents to compare their issuers")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON for scripts")
	return cmd
}

// checkReport is what policy check found. OK means verify can use every provider of a policy
// that loads.
type checkReport struct {
	OK        bool              `json:"ok"`
	Files     []string          `json:"files"`
	Providers int               `json:"providers"`
	Rules     int               `json:"rules"`
	Deny      int               `json:"deny_entries"`
	Errors    []string          `json:"errors,omitempty"`   // the policy does not load
	Unusable  map[string]string `json:"unusable,omitempty"` // provider name → why verify cannot use it
	// UnusableRules are the rules with an error of their own, each with its file and line.
	UnusableRules []string      `json:"unusable_rules,omitempty"`
	Warnings      []string      `json:"warnings,omitempty"`
	Issuers       []issuerCheck `json:"issuers,omitempty"`
}

func runPolicyCheck(ctx context.Context, src policySource, offline bool) checkReport {
	pol, err := src.load()
	if err != nil {
		var r checkReport
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				r.Errors = append(r.Errors, e.Error())
			}
		} else {
			r.Errors = []string{err.Error()}
		}
		return r
	}
	r := checkReport{Files: pol.Files, Unusable: map[string]string{}}
	files := verifier.Fetcher{TrustedUIDs: []int{src.owner}}
	for _, name := range slices.Sorted(maps.Keys(pol.Providers)) {
		if err := files.CheckFiles(pol.Providers[name]); err != nil {
			pol.Broken[name] = err // as verify treats it: this provider's users are denied
			delete(pol.Providers, name)
		}
	}
	for name, err := range pol.Broken {
		r.Unusable[name] = err.Error()
	}
	r.Providers, r.Rules, r.Deny = len(pol.Providers), len(pol.Rules), len(pol.Deny)
	r.UnusableRules = pol.BrokenRules()
	r.Warnings = pol.Warnings()
	if !offline {
		ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
		defer cancel()
		r.Issuers = checkIssuers(ctx, pol, verifier.Fetcher{Timeout: discoveryTimeout, TrustedUIDs: []int{src.owner}})
	}
	r.OK = len(r.Unusable) == 0 && len(r.UnusableRules) == 0
	for _, c := range r.Issuers {
		if c.Result == issuerMismatch {
			r.OK = false
		}
	}
	return r
}

func (r checkReport) print(stdout, stderr io.Writer, path string) {
	if len(r.Errors) > 0 {
		for _, e := range r.Errors {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "%s: the policy does not load (%s): opkssh verify denies every login until it is fixed\n", path, plural(len(r.Errors), "error", "errors"))
		return
	}
	for _, name := range slices.Sorted(maps.Keys(r.Unusable)) {
		fmt.Fprintf(stderr, "warning: provider %q is unusable, so its users cannot log in:\n", name)
		for _, line := range strings.Split(r.Unusable[name], "\n") {
			fmt.Fprintf(stderr, "  %s\n", line)
		}
	}
	mismatched := 0
	for _, c := range r.Issuers {
		switch c.Result {
		case issuerMismatch:
			mismatched++
			fmt.Fprintf(stderr, "warning: provider %q cannot get its OP's keys, so its users cannot log in: %s\n", c.Provider, c.Detail)
		case issuerUnchecked:
			fmt.Fprintf(stderr, "note: provider %q: issuer %s not compared with its discovery document: %s\n", c.Provider, c.Issuer, c.Detail)
		}
	}
	for _, b := range r.UnusableRules {
		fmt.Fprintf(stderr, "warning: %s\n", b)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if bad := len(r.Unusable) + mismatched; bad > 0 {
		fmt.Fprintf(stderr, "%s of %d unusable; fix and run opkssh policy check again\n",
			plural(bad, "provider", "providers"), r.Providers+len(r.Unusable))
	}
	if n := len(r.UnusableRules); n > 0 {
		fmt.Fprintf(stderr, "%s of %d unusable (the others work); fix and run opkssh policy check again\n",
			plural(n, "rule", "rules"), r.Rules)
	}
	if !r.OK {
		return
	}
	fmt.Fprintf(stdout, "ok: %s, %s, %s from %s\n",
		plural(r.Providers, "provider", "providers"), plural(r.Rules, "rule", "rules"),
		plural(r.Deny, "deny entry", "deny entries"), strings.Join(r.Files, ", "))
}

// Results of an issuerCheck.
const (
	issuerOK        = "ok"        // the discovery document names the policy's issuer
	issuerMismatch  = "mismatch"  // it names another issuer, or there is none at the issuer's address
	issuerUnchecked = "unchecked" // the OP could not be reached or answered otherwise: see doctor
)

// issuerCheck is one issuer of the policy compared with its OP's discovery document.
type issuerCheck struct {
	Provider string `json:"provider"`
	Issuer   string `json:"issuer"`
	Result   string `json:"result"`
	Detail   string `json:"detail,omitempty"`
}

// checkIssuers fetches, in parallel and as verify would, the discovery document of every issuer
// of the usable providers that take their keys from the network (one per tenant of a multi-tenant
// template), and says whether it names that issuer.
func checkIssuers(ctx context.Context, pol *policy.Policy, f verifier.Fetcher) []issuerCheck {
	var checks []issuerCheck
	for _, name := range slices.Sorted(maps.Keys(pol.Providers)) {
		p := pol.Providers[name]
		if p.JWKSFile != "" {
			continue
		}
		issuers := []string{p.Issuer}
		if strings.Contains(p.Issuer, policy.TenantPlaceholder) {
			issuers = nil
			for _, t := range p.Tenants {
				issuers = append(issuers, strings.Replace(p.Issuer, policy.TenantPlaceholder, t, 1))
			}
		}
		for _, iss := range issuers {
			checks = append(checks, issuerCheck{Provider: name, Issuer: iss})
		}
	}
	var wg sync.WaitGroup
	for i := range checks {
		wg.Go(func() {
			c := &checks[i]
			q := *pol.Providers[c.Provider]
			q.Issuer = c.Issuer
			_, err := f.Fetch(ctx, &q)
			switch kind := verifier.FetchErrorKind(err); {
			case err == nil:
				c.Result = issuerOK
			case kind == verifier.FetchIssuerMismatch:
				c.Result, c.Detail = issuerMismatch, err.Error()
			case kind == verifier.FetchHTTPStatus && strings.Contains(err.Error(), "HTTP 404"):
				// Nothing at the issuer's discovery address: the issuer string is wrong.
				c.Result, c.Detail = issuerMismatch, fmt.Sprintf("no discovery document at the issuer's address (%v); the issuer must be the OP's exactly, as in its tokens", err)
			default:
				c.Result, c.Detail = issuerUnchecked, err.Error()
			}
		})
	}
	wg.Wait()
	return checks
}
