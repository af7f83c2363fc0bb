package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Principals from claims. A rule may take its principals from a claim instead of listing them:
//
//	- principals_from: groups            # a claim name (dotted path or namespaced), or one of
//	  principals_allowed: [deploy, "team-*"]  # email_local_part, preferred_username
//	  provider: corp
//	  identities: [{email_domain: example.com}]
//
// The holder may log in as each value of the claim that is a valid Unix user name and matches one
// of the globs (path.Match syntax). root, and every other name, is only granted by a glob that
// matches it; root moreover only by the literal glob "root", never by a pattern. The identities
// stay required: they say who the rule is for, the claim says as which accounts.
//
// email_local_part is the part of the token's email before the '@', and is used only when the
// token's email_verified is the JSON boolean true; preferred_username is that claim. Both are
// names the OP lets users choose or that differ per tenant, so they are accepted only for a
// provider with one fixed issuer (not a multi-tenant template).

// Derived principal sources, the values of principals_from that are not claim names.
const (
	FromEmailLocalPart    = "email_local_part"
	FromPreferredUsername = "preferred_username"
)

// rulePrincipals reads principals, or principals_from with principals_allowed, of one rule.
func (p *parser) rulePrincipals(m map[string]entry, r *Rule, field string) {
	list, hasList := m["principals"]
	from, hasFrom := m["principals_from"]
	allowed, hasAllowed := m["principals_allowed"]
	switch {
	case hasList && hasFrom:
		p.errs.add(p.pos(from.key), field, "has both principals and principals_from; a rule lists its principals or takes them from a claim, not both")
		return
	case hasAllowed && !hasFrom:
		p.errs.add(p.pos(allowed.key), field+".principals_allowed", "is only used with principals_from; list the accounts in principals instead")
		return
	case hasFrom:
		p.principalsFrom(from, allowed, hasAllowed, r, field)
		return
	case !hasList:
		p.errs.add(r.Pos, field, "missing principals; list the user names this rule lets in, e.g. principals: [deploy], or take them from a claim with principals_from: groups and principals_allowed: [deploy]")
		return
	}
	if names, ok := p.strList(p.errs, list.val, field+".principals"); ok {
		for i, name := range names {
			if !ValidPrincipal(name) {
				p.errs.add(p.pos(list.val.Content[i]), fmt.Sprintf("%s.principals[%d]", field, i), "%q is not a valid user name; use 1-32 characters from A-Z a-z 0-9 _ . - not starting with '-' or '.' (no wildcards)", name)
			}
		}
		r.Principals = names
	}
}

func (p *parser) principalsFrom(from, allowed entry, hasAllowed bool, r *Rule, field string) {
	if s, ok := p.str(p.errs, from.val, field+".principals_from"); ok {
		if msg := checkPrincipalsFrom(s); msg != "" {
			p.errs.add(p.pos(from.val), field+".principals_from", "%s", msg)
		}
		r.PrincipalsFrom = s
	}
	if !hasAllowed {
		p.errs.add(p.pos(from.key), field, "principals_from needs principals_allowed, the accounts a claim value may name, e.g. principals_allowed: [deploy, \"team-*\"]")
		return
	}
	globs, _ := p.strList(p.errs, allowed.val, field+".principals_allowed")
	for i, g := range globs {
		if msg := checkPrincipalGlob(g); msg != "" {
			p.errs.add(p.pos(allowed.val.Content[i]), fmt.Sprintf("%s.principals_allowed[%d]", field, i), "%s", msg)
		}
	}
	r.PrincipalsAllowed = globs
}

// checkPrincipalsFrom returns what is wrong with a principals_from value, or "".
func checkPrincipalsFrom(claim string) string {
	if claim == FromEmailLocalPart || claim == FromPreferredUsername {
		return ""
	}
	if msg := checkClaimPath(claim); msg != "" {
		return "claim name " + msg
	}
	if claim == "email" {
		return `an email address is never a user name; use principals_from: email_local_part (verified emails only)`
	}
	if _, bad := nonIdentityClaims[claim]; bad {
		return fmt.Sprintf("claim %q describes the token, not an account; name a claim such as groups or roles", claim)
	}
	return ""
}

// checkPrincipalGlob returns what is wrong with a principals_allowed glob, or "".
func checkPrincipalGlob(g string) string {
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob (%v); use * ? and [a-z] as in shell patterns", g, err)
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-*?[]!^", c) >= 0) {
			return fmt.Sprintf("%q has %q, which no user name contains; use letters, digits, _ . - and the wildcards * ? [ ]", g, c)
		}
	}
	if strings.Trim(g, "*?") == "" {
		return fmt.Sprintf("%q would let a claim value name any account; give a literal part, e.g. \"team-*\"", g)
	}
	return ""
}

// literalGlobs returns the globs of a rule that are plain user names, and whether all are.
func literalGlobs(globs []string) ([]string, bool) {
	var lit []string
	for _, g := range globs {
		if strings.ContainsAny(g, "*?[") || !ValidPrincipal(g) {
			return nil, false
		}
		lit = append(lit, g)
	}
	return lit, true
}

// allowedGlob returns the first glob of globs that lets name be a principal, or "". root is let
// through only by the glob "root" itself.
func allowedGlob(globs []string, name string) string {
	for _, g := range globs {
		if name == "root" && g != "root" {
			continue
		}
		if ok, _ := path.Match(g, name); ok {
			return g
		}
	}
	return ""
}

// ValidUnixName reports whether a claim value may be used as an account name: a ValidPrincipal
// that is not all digits (which tools read as a uid).
func ValidUnixName(name string) bool {
	return ValidPrincipal(name) && strings.Trim(name, "0123456789") != ""
}

// listsPrincipal reports whether r could let principal in: it lists it, or a glob allows it.
func (r *Rule) listsPrincipal(principal string) bool {
	if r.PrincipalsFrom == "" {
		return slices.Contains(r.Principals, principal)
	}
	return ValidUnixName(principal) && allowedGlob(r.PrincipalsAllowed, principal) != ""
}

// principalsText describes a rule's principals for messages: [root deploy], or the claim and globs.
func (r *Rule) principalsText() string {
	if r.PrincipalsFrom == "" {
		return fmt.Sprint(r.Principals)
	}
	return fmt.Sprintf("the values of %s matching %v", r.PrincipalsFrom, r.PrincipalsAllowed)
}

// claimPrincipal says whether the token's principals_from claim names principal, and explains.
// The rule's identities have matched already.
func (m matcher) claimPrincipal(r *Rule, principal string) (bool, string) {
	values, why := m.principalValues(r.PrincipalsFrom)
	if why != "" {
		return false, why
	}
	if !slices.Contains(values, principal) {
		return false, fmt.Sprintf("%s has no value %q (%d values)", r.PrincipalsFrom, principal, len(values))
	}
	if !ValidUnixName(principal) {
		return false, fmt.Sprintf("%s value %s is not a valid user name", r.PrincipalsFrom, quote(principal))
	}
	g := allowedGlob(r.PrincipalsAllowed, principal)
	if g == "" {
		return false, fmt.Sprintf("%s value %q matches no glob of principals_allowed %v (root needs the literal glob \"root\")", r.PrincipalsFrom, principal, r.PrincipalsAllowed)
	}
	return true, fmt.Sprintf("%s value %q matches principals_allowed glob %q", r.PrincipalsFrom, principal, g)
}

// principalValues returns the string values of a principals_from source in the token, or why
// there are none.
func (m matcher) principalValues(from string) ([]string, string) {
	switch from {
	case FromEmailLocalPart, FromPreferredUsername:
		if strings.Contains(m.prov.Issuer, TenantPlaceholder) {
			return nil, fmt.Sprintf("%s is not used with a multi-tenant provider: each tenant names its own users", from)
		}
	}
	if from == FromEmailLocalPart {
		email, ok := m.claims["email"].(string)
		if !ok {
			return nil, "token has no email string"
		}
		if why := malformedEmail(email); why != "" {
			return nil, fmt.Sprintf("token email %s %s", quote(email), why)
		}
		if m.claims["email_verified"] != true {
			return nil, "email_local_part needs a verified email, and the token's email_verified is not true"
		}
		return []string{email[:strings.IndexByte(email, '@')]}, ""
	}
	v, ok := lookup(m.claims, from)
	if !ok {
		return nil, fmt.Sprintf("token has no claim %q", from)
	}
	switch v := v.(type) {
	case string:
		return []string{v}, ""
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out, ""
	}
	return nil, fmt.Sprintf("claim %q is neither a string nor a list", from)
}

// markDerivedPrincipalRules breaks the rules whose principals_from source their provider cannot
// support (see principalValues), once every file's providers are known.
func markDerivedPrincipalRules(pol *Policy) {
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if r.PrincipalsFrom != FromEmailLocalPart && r.PrincipalsFrom != FromPreferredUsername || r.Broken != "" {
			continue
		}
		if prov := pol.Providers[r.Provider]; prov != nil && strings.Contains(prov.Issuer, TenantPlaceholder) {
			r.Broken = fmt.Sprintf("principals_from: %s needs a provider with one fixed issuer; %q is a multi-tenant template", r.PrincipalsFrom, r.Provider)
		}
	}
}
