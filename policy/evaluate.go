package policy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// Claims are the claims of a verified ID token: its JSON payload decoded
// with encoding/json into map[string]any. Numbers may be json.Number or
// float64.
type Claims map[string]any

// Reason codes of a Decision.
const (
	ReasonAllowed            = "allowed"
	ReasonInvalidPrincipal   = "invalid_principal"
	ReasonUnknownProvider    = "unknown_provider"
	ReasonProviderBroken     = "provider_broken"
	ReasonDenyList           = "denied_by_deny_list"
	ReasonNoRule             = "no_rule_for_principal"
	ReasonNoMatchingIdentity = "no_matching_identity"
	ReasonEmailNotVerified   = "email_not_verified"
	ReasonRequireAMR         = "require_amr_failed"
	ReasonRequireFrom        = "require_from_failed"
	ReasonRuleBroken         = "rule_broken"
	ReasonNoClaimPrincipal   = "principal_not_in_claim"
)

// Decision is the outcome of Evaluate.
type Decision struct {
	Allowed bool
	Reason  string // one of the Reason constants
	Rule    *Rule  // the rule that allowed, if any
	// Explain says in human terms what matched or, for every rule that could
	// have applied, why it did not. Token values are quoted, never dumped.
	Explain []string
}

// Evaluate decides whether the holder of a verified token from provider
// providerName, with claims c, may log in as principal. Rules that require a
// client address (require.from) do not match: use EvaluateFrom.
func (p *Policy) Evaluate(principal, providerName string, c Claims) Decision {
	return p.EvaluateFrom(principal, providerName, c, netip.Addr{})
}

// EvaluateFrom is Evaluate for a client connecting from the address from
// (the zero Addr when sshd did not say).
func (p *Policy) EvaluateFrom(principal, providerName string, c Claims, from netip.Addr) Decision {
	if !ValidPrincipal(principal) {
		return deny(ReasonInvalidPrincipal, fmt.Sprintf("principal %q is not a valid user name", principal))
	}
	if p == nil {
		return deny(ReasonUnknownProvider, "no policy is loaded")
	}
	if err, broken := p.Broken[providerName]; broken {
		d := deny(ReasonProviderBroken, fmt.Sprintf("provider %q is unusable until its block is fixed:", providerName))
		d.Explain = append(d.Explain, strings.Split(err.Error(), "\n")...)
		return d
	}
	prov, ok := p.Providers[providerName]
	if !ok {
		return deny(ReasonUnknownProvider, fmt.Sprintf("provider %q is not defined", providerName))
	}
	m := matcher{prov: prov, claims: c, from: from.Unmap(), principal: principal}
	if d, denied := p.denyList(m, providerName); denied {
		return d
	}

	d := Decision{Reason: ReasonNoRule}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Provider != providerName || !r.listsPrincipal(principal) {
			continue
		}
		reason, lines := m.rule(r)
		if reason == ReasonAllowed {
			return Decision{Allowed: true, Reason: ReasonAllowed, Rule: r, Explain: lines}
		}
		if rank(reason) > rank(d.Reason) {
			d.Reason = reason
		}
		d.Explain = append(d.Explain, lines...)
	}
	if d.Reason == ReasonNoRule {
		d.Explain = append(d.Explain, fmt.Sprintf("no rule for provider %q lists principal %q", providerName, principal))
		for _, r := range p.Rules {
			if r.listsPrincipal(principal) {
				d.Explain = append(d.Explain, fmt.Sprintf("rule at %s lists %q but for provider %q", r.Pos, principal, r.Provider))
			}
		}
	}
	return d
}

func deny(reason, line string) Decision {
	return Decision{Reason: reason, Explain: []string{line}}
}

// rank orders the denial reasons of candidate rules: the one that came
// closest to allowing is reported.
func rank(reason string) int {
	switch reason {
	case ReasonNoMatchingIdentity:
		return 1
	case ReasonEmailNotVerified:
		return 2
	case ReasonRequireAMR:
		return 3
	case ReasonRequireFrom:
		return 4
	case ReasonNoClaimPrincipal:
		return 5
	case ReasonRuleBroken:
		return 6
	}
	return 0
}

// matcher matches identities against one token's claims.
type matcher struct {
	prov   *Provider
	claims Claims
	// forDeny skips the email_verified check: a deny entry matches whatever
	// the token says about verification, because matching more is the safe
	// side for a deny list. For the same reason a group deny entry matches a
	// groups claim that is neither a list nor a string.
	forDeny bool
	from    netip.Addr // the client's address; invalid when unknown
	// principal is the account asked for, which a principals_from claim must name.
	principal string
}

// rule returns ReasonAllowed or why r does not allow, with explanations.
func (m matcher) rule(r *Rule) (string, []string) {
	if r.Broken != "" {
		return ReasonRuleBroken, []string{fmt.Sprintf("rule at %s is unusable: %s", r.Pos, r.Broken)}
	}
	reason := ReasonNoMatchingIdentity
	var lines []string
	var matched *Identity
	for i := range r.Identities {
		id := &r.Identities[i]
		ok, why := m.match(*id)
		if ok {
			matched = id
			break
		}
		if why == errUnverified {
			reason = ReasonEmailNotVerified
		}
		lines = append(lines, fmt.Sprintf("rule at %s: %s (%s): %s", r.Pos, id, id.Pos, why))
	}
	if matched == nil {
		return reason, lines
	}
	if missing := m.missingAMR(r.RequireAMR); missing != "" {
		return ReasonRequireAMR, []string{fmt.Sprintf("rule at %s: %s matched but require.amr failed: %s", r.Pos, matched, missing)}
	}
	if why := m.outsideFrom(r.RequireFrom); why != "" {
		return ReasonRequireFrom, []string{fmt.Sprintf("rule at %s: %s matched but require.from failed: %s", r.Pos, matched, why)}
	}
	if r.PrincipalsFrom != "" {
		ok, why := m.claimPrincipal(r, m.principal)
		if !ok {
			return ReasonNoClaimPrincipal, []string{fmt.Sprintf("rule at %s: %s matched but principals_from failed: %s", r.Pos, matched, why)}
		}
		return ReasonAllowed, []string{fmt.Sprintf("allowed by rule at %s: %s (%s); %s", r.Pos, matched, matched.Pos, why)}
	}
	return ReasonAllowed, []string{fmt.Sprintf("allowed by rule at %s: %s (%s)", r.Pos, matched, matched.Pos)}
}

// malformedEmail says why an email claim is not a plain address that email rules may compare, or
// "": x@evil.org@example.com would otherwise match email_domain example.com. More than one '@',
// white space or control characters anywhere, a quoted local part, or an empty side are refused.
func malformedEmail(e string) string {
	at := strings.IndexByte(e, '@')
	switch {
	case strings.Count(e, "@") != 1:
		return "does not have exactly one @"
	case at == 0 || at == len(e)-1:
		return "has an empty name or domain"
	case strings.HasPrefix(e, `"`) || strings.Contains(e, `"`):
		return "has a quoted part"
	case strings.IndexFunc(e, func(r rune) bool { return r <= ' ' || r == 0x7f || unicode.IsSpace(r) }) >= 0:
		return "contains white space or control characters"
	}
	return ""
}

const errUnverified = "token email is not verified (email_verified is not true)"

// denyList checks the deny entries that apply to providerName. A deny entry errs towards matching
// (matcher.forDeny): a claim it cannot read cannot show the person is not the one denied.
func (p *Policy) denyList(m matcher, providerName string) (Decision, bool) {
	m.forDeny = true
	for _, id := range p.Deny {
		if id.Provider != "" && id.Provider != providerName {
			continue
		}
		if ok, _ := m.match(id); ok {
			return deny(ReasonDenyList, fmt.Sprintf("deny entry at %s (%s) matches", id.Pos, id)), true
		}
	}
	return Decision{}, false
}

// match reports whether id matches, and if not, why.
func (m matcher) match(id Identity) (bool, string) {
	switch id.Kind {
	case KindEmail, KindEmailDomain:
		email, ok := m.claims["email"].(string)
		if !ok {
			return false, "token has no email string"
		}
		if why := malformedEmail(email); why != "" {
			if m.forDeny {
				// As for groups: a deny entry errs towards matching an address it cannot read.
				return true, ""
			}
			return false, fmt.Sprintf("token email %s %s, so it matches no email or email_domain rule", quote(email), why)
		}
		var eq bool
		if id.Kind == KindEmail {
			eq = asciiEqualFold(email, id.Value)
		} else {
			at := strings.LastIndexByte(email, '@')
			eq = at >= 0 && asciiEqualFold(email[at+1:], id.Value)
		}
		if !eq {
			return false, fmt.Sprintf("token email is %s", quote(email))
		}
		if !m.forDeny && m.prov.RequireEmailVerified && m.claims["email_verified"] != true {
			return false, errUnverified
		}
		return true, ""
	case KindSub:
		sub, ok := m.claims["sub"].(string)
		if !ok {
			return false, "token has no sub string"
		}
		if sub != id.Value {
			return false, fmt.Sprintf("token sub is %s", quote(sub))
		}
		return true, ""
	case KindGroup:
		v, ok := lookup(m.claims, m.prov.GroupsClaim)
		if !ok {
			return false, fmt.Sprintf("token has no groups claim %q", m.prov.GroupsClaim)
		}
		var list []any
		switch g := v.(type) {
		case []any:
			list = g
		case string:
			// Some OPs send a single group as a plain string. It is one group, compared whole:
			// never split on commas or spaces.
			list = []any{g}
		default:
			if m.forDeny {
				// A deny entry errs towards matching, as it does for email_verified: a groups claim
				// of another shape cannot be read, so it cannot show the person is not in the group.
				return true, ""
			}
			return false, fmt.Sprintf("groups claim %q is neither a list nor a string", m.prov.GroupsClaim)
		}
		if containsString(list, id.Value) {
			return true, ""
		}
		return false, fmt.Sprintf("groups claim %q (%d entries) does not contain it", m.prov.GroupsClaim, len(list))
	case KindClaim:
		v, ok := lookup(m.claims, id.ClaimName)
		if !ok {
			return false, fmt.Sprintf("token has no claim %q", id.ClaimName)
		}
		if list, isList := v.([]any); isList {
			for _, e := range list {
				if s, ok := scalarText(e); ok && s == id.Value {
					return true, ""
				}
			}
			return false, fmt.Sprintf("claim %q (%d entries) does not contain it", id.ClaimName, len(list))
		}
		s, ok := scalarText(v)
		if !ok {
			return false, fmt.Sprintf("claim %q is an object, not a value or a list", id.ClaimName)
		}
		if s != id.Value {
			return false, fmt.Sprintf("claim %q is %s", id.ClaimName, quote(s))
		}
		return true, ""
	}
	if isCIKind(id.Kind) {
		return m.matchCI(id)
	}
	return false, fmt.Sprintf("unknown identity kind %q", id.Kind)
}

// missingAMR returns a description of the first required amr value the
// token lacks, or "".
func (m matcher) missingAMR(required []string) string {
	if len(required) == 0 {
		return ""
	}
	v, ok := m.claims["amr"]
	if !ok {
		return "token has no amr claim"
	}
	list, ok := v.([]any)
	if !ok {
		return "token amr is not a list"
	}
	for _, want := range required {
		if !containsString(list, want) {
			return fmt.Sprintf("token amr lacks %q", want)
		}
	}
	return ""
}

// containsString reports whether list has the string s; other element types
// never match.
func containsString(list []any, s string) bool {
	for _, e := range list {
		if e, ok := e.(string); ok && e == s {
			return true
		}
	}
	return false
}

// lookup finds a claim by name. The whole name is tried as a top-level
// claim first, so namespaced claims such as "https://example.com/roles"
// work; otherwise it is a dotted path into nested objects.
func lookup(c Claims, name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	var cur any = map[string]any(c)
	for _, seg := range strings.Split(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// scalarText returns a string as is and a number or boolean as its JSON
// text; objects, lists and null have no text.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool, float64, json.Number:
		b, err := json.Marshal(v)
		return string(b), err == nil
	}
	return "", false
}

// quote shows a token value in an explanation, cut short so that a huge
// claim cannot flood the log.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// outsideFrom says why the client address is not in any of the networks, or "" if it is (or
// the rule has none). An unknown address never satisfies a from condition.
func (m matcher) outsideFrom(networks []netip.Prefix) string {
	if len(networks) == 0 {
		return ""
	}
	if !m.from.IsValid() {
		return "the client address is unknown; sshd passes it with: AuthorizedKeysCommand ... verify %u %k %t --client-addr %C (where sshd_config(5) lists %C for AuthorizedKeysCommand; OpenSSH 9.2 does not)"
	}
	for _, n := range networks {
		if n.Contains(m.from) {
			return ""
		}
	}
	return fmt.Sprintf("client address %s is not in %v", m.from, networks)
}
