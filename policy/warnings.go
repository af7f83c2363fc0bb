package policy

import (
	"fmt"
	"slices"
)

// Warnings lists rules that load but are probably not what their author meant: claim identities
// on a claim whose value every token of the provider (or of a whole tenant) carries, so that the
// rule lets in everyone the OP knows. Each warning names the file and line.
func (p *Policy) Warnings() []string {
	var out []string
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
