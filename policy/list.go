package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// Listing is a loaded policy laid out for people and scripts (opkssh policy
// list): every provider, rule and deny entry with the file and line it comes
// from.
type Listing struct {
	Files     []string         `json:"files"`
	Providers []ListedProvider `json:"providers"`
	Rules     []ListedRule     `json:"rules"`
	Deny      []ListedIdentity `json:"deny"`
}

// ListedProvider is one provider block.
type ListedProvider struct {
	Name       string   `json:"name"`
	Issuer     string   `json:"issuer"`
	ClientIDs  []string `json:"client_ids"`
	Expiration string   `json:"expiration"`
	File       string   `json:"file"`
	Line       int      `json:"line"`
	// Broken is the problem that disables the provider ("" when usable):
	// its rules deny every login.
	Broken string `json:"broken,omitempty"`
}

// ListedRule is one rule.
type ListedRule struct {
	Principals  []string         `json:"principals"`
	Provider    string           `json:"provider"`
	Identities  []ListedIdentity `json:"identities"`
	RequireAMR  []string         `json:"require_amr,omitempty"`
	RequireFrom []string         `json:"require_from,omitempty"`
	// PrincipalsFrom and PrincipalsAllowed are set instead of Principals for a rule that takes
	// its principals from a claim.
	PrincipalsFrom    string   `json:"principals_from,omitempty"`
	PrincipalsAllowed []string `json:"principals_allowed,omitempty"`
	Options           []string `json:"options,omitempty"`
	Broken            string   `json:"broken,omitempty"` // why the rule can never allow
	Comment           string   `json:"comment,omitempty"`
	File              string   `json:"file"`
	Line              int      `json:"line"`
}

// ListedIdentity is an identity of a rule or a deny entry.
type ListedIdentity struct {
	// Text is the identity as opkssh add and remove take it, e.g.
	// "domain:example.com".
	Text      string `json:"text"`
	Kind      string `json:"kind"`
	Value     string `json:"value"`
	ClaimName string `json:"claim_name,omitempty"`
	Provider  string `json:"provider,omitempty"` // deny entries limited to one provider
	File      string `json:"file"`
	Line      int    `json:"line"`
}

// List lays out the policy. With a principal, only the rules that list it
// exactly are included; providers and deny entries always are, since they
// apply to every principal.
func (p *Policy) List(principal string) Listing {
	l := Listing{Files: p.Files, Providers: []ListedProvider{}, Rules: []ListedRule{}, Deny: []ListedIdentity{}}
	for name, prov := range p.Providers {
		l.Providers = append(l.Providers, listProvider(prov, name, nil))
	}
	for name, err := range p.Broken {
		l.Providers = append(l.Providers, listProvider(p.brokenByName[name], name, err))
	}
	order := func(file string) int { return slices.Index(p.Files, file) }
	slices.SortFunc(l.Providers, func(a, b ListedProvider) int {
		return cmp.Or(cmp.Compare(order(a.File), order(b.File)), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Name, b.Name))
	})
	for _, r := range p.Rules {
		if principal != "" && !r.listsPrincipal(principal) {
			continue
		}
		lr := ListedRule{Principals: r.Principals, Provider: r.Provider, RequireAMR: r.RequireAMR, RequireFrom: prefixStrings(r.RequireFrom), Comment: r.Comment, File: r.Pos.File, Line: r.Pos.Line,
			PrincipalsFrom: r.PrincipalsFrom, PrincipalsAllowed: r.PrincipalsAllowed, Options: r.Options, Broken: r.Broken}
		for _, id := range r.Identities {
			lr.Identities = append(lr.Identities, listIdentity(id))
		}
		l.Rules = append(l.Rules, lr)
	}
	for _, id := range p.Deny {
		l.Deny = append(l.Deny, listIdentity(id))
	}
	return l
}

// listProvider lists prov, which may be nil or partly filled in when its
// block is broken.
func listProvider(prov *Provider, name string, err error) ListedProvider {
	lp := ListedProvider{Name: name}
	if prov != nil {
		lp.Issuer, lp.ClientIDs, lp.File, lp.Line = prov.Issuer, prov.ClientIDs, prov.Pos.File, prov.Pos.Line
		if prov.Expiration != (Expiration{}) { // unset when a broken block's value was bad
			lp.Expiration = shortExpiration(prov.Expiration)
		}
	}
	if err != nil {
		lp.Broken = err.Error()
	}
	return lp
}

// shortExpiration writes 24h rather than Duration.String's 24h0m0s.
func shortExpiration(e Expiration) string {
	s := e.String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func listIdentity(id Identity) ListedIdentity {
	return ListedIdentity{Text: id.String(), Kind: id.Kind, Value: id.Value, ClaimName: id.ClaimName, Provider: id.Provider, File: id.Pos.File, Line: id.Pos.Line}
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
