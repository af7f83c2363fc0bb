package policy

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// Signer is one entry of the signers section: whose signatures (opkssh sign, git commits, API
// requests) are accepted, for a policy used to verify signatures rather than logins. It has no
// principals: a signature is not a login.
//
//	signers:
//	  - provider: corp
//	    identities: [{email: alice@example.com}, {group: release}]
//	    namespaces: [git]        # optional: only signatures made for these namespaces
type Signer struct {
	Provider   string
	Identities []Identity
	Namespaces []string // empty means any namespace
	Comment    string
	Pos        Position
}

var signerKeys = []string{"provider", "identities", "namespaces", "comment"}

// signer parses one signers entry as a rule without principals.
func (p *parser) signer(n *yaml.Node, field string) (Signer, bool) {
	s := Signer{Pos: p.pos(n)}
	m, ok := p.fields(p.errs, n, field, signerKeys...)
	if !ok {
		return s, false
	}
	before := len(p.errs.errs) + p.errs.dropped
	s.Provider, s.Identities = p.providerAndIdentities(m, s.Pos, field,
		"missing provider; name the provider whose tokens vouch for the signers, e.g. provider: corp",
		"missing identities; list whose signatures are accepted, e.g. identities: [{email: alice@example.com}]")
	if e, ok := m["namespaces"]; ok {
		s.Namespaces, _ = p.strList(p.errs, e.val, field+".namespaces")
	}
	if e, ok := m["comment"]; ok {
		s.Comment = e.val.Value
	}
	return s, len(p.errs.errs)+p.errs.dropped == before
}

// EvaluateSigner decides whether the holder of a verified token from provider providerName, with
// claims c, is an accepted signer for namespace: the deny list does not match and a signers entry
// for the provider and namespace does. Decision.Rule is nil; the explanation names the entry.
func (p *Policy) EvaluateSigner(providerName, namespace string, c Claims) Decision {
	if p == nil {
		return deny(ReasonUnknownProvider, "no policy is loaded")
	}
	if err, broken := p.Broken[providerName]; broken {
		return deny(ReasonProviderBroken, fmt.Sprintf("provider %q is unusable until its block is fixed: %v", providerName, err))
	}
	prov, ok := p.Providers[providerName]
	if !ok {
		return deny(ReasonUnknownProvider, fmt.Sprintf("provider %q is not defined", providerName))
	}
	m := matcher{prov: prov, claims: c}
	if d, denied := p.denyList(m, providerName); denied {
		return d
	}
	d := Decision{Reason: ReasonNoRule}
	for i := range p.Signers {
		s := &p.Signers[i]
		if s.Provider != providerName {
			continue
		}
		if len(s.Namespaces) > 0 && !slices.Contains(s.Namespaces, namespace) {
			d.Explain = append(d.Explain, fmt.Sprintf("signers entry at %s is for namespaces %q, not %q", s.Pos, s.Namespaces, namespace))
			continue
		}
		reason, lines := m.rule(&Rule{Provider: s.Provider, Identities: s.Identities, Pos: s.Pos})
		if reason == ReasonAllowed {
			return Decision{Allowed: true, Reason: ReasonAllowed, Explain: lines}
		}
		if rank(reason) > rank(d.Reason) {
			d.Reason = reason
		}
		d.Explain = append(d.Explain, lines...)
	}
	if len(d.Explain) == 0 {
		d.Explain = []string{fmt.Sprintf("no signers entry for provider %q", providerName)}
	}
	return d
}
