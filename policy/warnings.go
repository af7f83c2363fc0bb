package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Warnings lists rules that load but are probably not what their author meant: claim identities
// on a claim whose value every token of the provider (or of a whole tenant) carries, so that the
// rule lets in everyone the OP knows; and rules that repeat an earlier one (the same principals,
// provider, identities and requirements, in any order), which removing one of them would leave
// in force. Each warning names the file and line.
func (p *Policy) Warnings() []string {
	out := p.duplicateRules()
	for _, r := range p.Rules {
		prov := p.Providers[r.Provider]
		for _, id := range r.Identities {
			if id.Kind != KindClaim {
				continue
			}
			if what, ok := orgWideClaims[id.ClaimName]; ok {
				out = append(out, fmt.Sprintf("%s: claim %q is %s, the same for every user there: this rule lets in all of them as %s", id.Pos, id.ClaimName, what, r.principalsText()))
				continue
			}
			if prov != nil && (id.Value == prov.Issuer || slices.Contains(prov.ClientIDs, id.Value)) {
				out = append(out, fmt.Sprintf("%s: claim %q = %q is the provider's issuer or client ID, which every token carries: this rule lets in everyone as %s", id.Pos, id.ClaimName, id.Value, r.principalsText()))
			}
		}
	}
	return append(out, p.ciWarnings()...)
}

// duplicateRules warns about each rule equal to an earlier one.
func (p *Policy) duplicateRules() []string {
	var out []string
	seen := map[string]Position{}
	for _, r := range p.Rules {
		key := ruleKey(r)
		if first, dup := seen[key]; dup {
			out = append(out, fmt.Sprintf("%s: this rule repeats the one at %s (principals %v, provider %q); delete one of them", r.Pos, first, r.Principals, r.Provider))
			continue
		}
		seen[key] = r.Pos
	}
	return out
}

// ruleKey is the same for two rules that let in the same people as the same users.
func ruleKey(r Rule) string {
	sorted := func(s []string) string {
		c := slices.Clone(s)
		slices.Sort(c)
		return strings.Join(slices.Compact(c), "\x00")
	}
	ids := make([]string, 0, len(r.Identities))
	for _, id := range r.Identities {
		ids = append(ids, id.Kind+"\x01"+id.ClaimName+"\x01"+id.Value)
	}
	from := make([]string, 0, len(r.RequireFrom))
	for _, n := range r.RequireFrom {
		from = append(from, n.Masked().String())
	}
	return strings.Join([]string{r.Provider, sorted(r.Principals), sorted(ids), sorted(r.RequireAMR), sorted(from)}, "\x02")
}
