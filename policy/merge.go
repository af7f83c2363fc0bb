package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// fragment is what one file contributes before the files are merged.
type fragment struct {
	file      string
	providers []providerDef
	rules     []Rule
	signers   []Signer
	deny      []Identity
	refs      []providerRef
	// userPolicies is the file's user_policies block, if it has one.
	userPolicies *UserPolicies
	chain        *Chain // the file's chain block, if it has one
}

// providerDef is one provider block; err is set when the block is broken.
type providerDef struct {
	p         *Provider
	err       error
	issuerPos Position // valid issuers only, for the duplicate issuer check
}

// providerRef is a use of a provider name by a rule or deny entry.
type providerRef struct {
	name  string
	pos   Position
	field string
}

// errList collects errors up to maxErrors and counts the rest.
type errList struct {
	errs    []error
	dropped int
}

func (l *errList) add(pos Position, field, format string, args ...any) {
	if len(l.errs) >= maxErrors {
		l.dropped++
		return
	}
	l.errs = append(l.errs, &Error{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addErr adds an error found elsewhere, each error of a joined one separately.
func (l *errList) addErr(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			l.addErr(e)
		}
		return
	}
	if len(l.errs) >= maxErrors {
		l.dropped++
		return
	}
	l.errs = append(l.errs, err)
}

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := l.errs
	if l.dropped > 0 {
		errs = append(errs[:len(errs):len(errs)], fmt.Errorf("... and %d more errors; fix the ones above first", l.dropped))
	}
	return errors.Join(errs...)
}

// assemble merges the fragments in order, checks what spans files (provider
// names, issuers, references) and returns the policy, or every error found.
func assemble(frags []*fragment, errs *errList) (*Policy, error) {
	pol := &Policy{Providers: map[string]*Provider{}, Broken: map[string]error{}, brokenByName: map[string]*Provider{}}
	defined := map[string]Position{}
	issuers := map[string]string{}
	for _, f := range frags {
		pol.Files = append(pol.Files, f.file)
		for _, d := range f.providers {
			name := d.p.Name
			if prev, dup := defined[name]; dup {
				errs.add(d.p.Pos, "providers."+name, "provider %q is already defined at %s; remove one of them or give it another name", name, prev)
				continue
			}
			defined[name] = d.p.Pos
			if d.err != nil {
				pol.Broken[name] = d.err
				pol.brokenByName[name] = d.p
			} else {
				pol.Providers[name] = d.p
			}
			if d.issuerPos.Line == 0 {
				continue
			}
			if other, dup := issuers[d.p.Issuer]; dup {
				errs.add(d.issuerPos, "providers."+name+".issuer", "provider %q (%s) has the same issuer; a token must map to exactly one provider, so merge the two (client_ids takes several values)", other, defined[other])
				continue
			}
			issuers[d.p.Issuer] = name
		}
		pol.Rules = append(pol.Rules, f.rules...)
		pol.Signers = append(pol.Signers, f.signers...)
		pol.Deny = append(pol.Deny, f.deny...)
		if up := f.userPolicies; up != nil {
			if pol.UserPolicies.Pos.Line != 0 {
				errs.add(up.Pos, "user_policies", "is already set at %s; keep one user_policies block", pol.UserPolicies.Pos)
				continue
			}
			pol.UserPolicies = *up
		}
		if c := f.chain; c != nil {
			if pol.Chain != nil {
				errs.add(c.Pos, "chain", "is already set at %s; keep one chain block", pol.Chain.Pos)
				continue
			}
			pol.Chain = c
		}
	}
	for _, f := range frags {
		for _, r := range f.refs {
			if _, ok := defined[r.name]; !ok {
				errs.add(r.pos, r.field, "unknown provider %q (defined: %s); define it under providers or fix the name", r.name, knownList(defined))
			}
		}
	}
	checkCIRules(pol, frags, errs)
	if len(errs.errs) > 0 {
		// The policy does not load; report the broken provider blocks and rules too, so that one pass
		// of "opkssh policy check" shows every error.
		for _, name := range slices.Sorted(maps.Keys(pol.Broken)) {
			errs.addErr(pol.Broken[name])
		}
		for _, r := range pol.Rules {
			if r.Broken != "" {
				errs.addErr(fmt.Errorf("%s: rule is unusable: %s", r.Pos, r.Broken))
			}
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	markDerivedPrincipalRules(pol)
	return pol, nil
}

func knownList[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}
