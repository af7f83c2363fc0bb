package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Provider kinds. A CI provider's tokens are a platform's workload identity tokens: any job on the
// platform can get one, so there are no client IDs to check, and a rule must name the job's
// repository (or GitLab project) exactly. verify requires them GQ256-signed and bound to the
// certificate's key (the binding differs by kind; see verifier/ci.go).
const (
	ProviderOIDC           = "oidc"
	ProviderGitHubActions  = "github-actions"
	ProviderForgejoActions = "forgejo-actions"
	ProviderGitLabCI       = "gitlab-ci"
)

// providerKinds lists the accepted kind values, default first.
var providerKinds = []string{ProviderOIDC, ProviderGitHubActions, ProviderForgejoActions, ProviderGitLabCI}

// defaultCIIssuers are the issuers of the hosted platforms, used when a CI provider names none.
var defaultCIIssuers = map[string]string{
	ProviderGitHubActions: "https://token.actions.githubusercontent.com",
	ProviderGitLabCI:      "https://gitlab.com",
}

// IsCI reports whether the provider is a CI platform's (kind other than oidc).
func (p *Provider) IsCI() bool { return p.Kind != "" && p.Kind != ProviderOIDC }

// CI identity kinds: the job's repository (GitHub, Forgejo) or project (GitLab), compared exactly.
const (
	KindRepository  = "repository"
	KindProjectPath = "project_path"
)

// ciConditions are the further token claims a CI identity may require, per identity kind, each
// compared exactly with the token's claim of the same name. repository_owner_id and namespace_id
// pin the owner by its numeric ID, which a rename does not carry over to whoever registers the
// old name.
var ciConditions = map[string][]string{
	KindRepository:  {"repository_owner_id", "repository_id", "ref", "environment", "workflow_ref", "job_workflow_ref", "event_name"},
	KindProjectPath: {"namespace_id", "project_id", "ref", "ref_protected", "environment"},
}

// ownerPin is the condition that pins a CI identity's owner, per kind.
var ownerPin = map[string]string{KindRepository: "repository_owner_id", KindProjectPath: "namespace_id"}

// Condition is one further claim a CI identity requires: the token's claim Name equals Value.
type Condition struct {
	Name  string
	Value string
}

// ciKindOf says which identity kind a CI provider kind's rules use.
func ciKindOf(providerKind string) string {
	switch providerKind {
	case ProviderGitHubActions, ProviderForgejoActions:
		return KindRepository
	case ProviderGitLabCI:
		return KindProjectPath
	}
	return ""
}

func isCIKind(kind string) bool { return kind == KindRepository || kind == KindProjectPath }

// ciIdentityKeys are the keys an identity mapping may hold when it has a CI kind.
func ciIdentityKeys(m *yaml.Node) []string {
	var keys []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i].Value; isCIKind(k) {
			keys = append(keys, ciConditions[k]...)
		}
	}
	return keys
}

// conditions parses the condition keys of a CI identity of kind id.Kind.
func (p *parser) conditions(m map[string]entry, field string, id *Identity) {
	allowed := ciConditions[id.Kind]
	for _, e := range orderedEntries(m) {
		name := e.key.Value
		if name == id.Kind || name == "provider" || slices.Contains(identityKeys, name) {
			continue
		}
		if !slices.Contains(allowed, name) {
			p.errs.add(p.pos(e.key), field, "%s is not a condition of a %s identity (known: %s)", name, id.Kind, strings.Join(allowed, ", "))
			continue
		}
		var val string
		if name == "ref_protected" {
			b, ok := p.boolean(p.errs, e.val, field+"."+name)
			if !ok {
				continue
			}
			val = fmt.Sprint(b)
		} else if s, ok := p.str(p.errs, e.val, field+"."+name); ok {
			val = s
		} else {
			continue
		}
		if msg := checkCIValue(name, val); msg != "" {
			p.errs.add(p.pos(e.val), field+"."+name, "%s", msg)
			continue
		}
		id.Conditions = append(id.Conditions, Condition{Name: name, Value: val})
	}
}

// checkCIPath returns what is wrong with a repository (OWNER/REPO) or project path
// (GROUP/[SUBGROUP/...]PROJECT), or "". Both are matched exactly: no wildcards, and the owner is
// always a whole segment of its own, so no rule can reach another owner's jobs.
func checkCIPath(kind, v string) string {
	example := "acme/deploy"
	if kind == KindProjectPath {
		example = "acme/infra/deploy"
	}
	if strings.ContainsAny(v, "*?[]{}!") {
		return fmt.Sprintf("%q: %s is matched exactly, wildcards are not supported (they could match another owner's jobs); list each one, e.g. %s", v, kind, example)
	}
	segs := strings.Split(v, "/")
	if kind == KindRepository && len(segs) != 2 || kind == KindProjectPath && len(segs) < 2 {
		return fmt.Sprintf("%q is not an %s; write it as the token's %s claim, e.g. %s", v, map[string]string{KindRepository: "OWNER/REPO", KindProjectPath: "GROUP/PROJECT path"}[kind], kind, example)
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.IndexFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) >= 0 {
			return fmt.Sprintf("%q has an empty or invalid segment; names use letters, digits, '-', '_' and '.', e.g. %s", v, example)
		}
	}
	return ""
}

// checkCIValue returns what is wrong with a condition's value, or "".
func checkCIValue(name, v string) string {
	switch name {
	case "repository_owner_id", "repository_id", "namespace_id", "project_id":
		for _, c := range v {
			if c < '0' || c > '9' {
				return fmt.Sprintf("%q is not a numeric ID; write the number the platform gives (for GitHub: gh api users/OWNER --jq .id)", v)
			}
		}
	}
	if strings.ContainsAny(v, "*?") {
		return fmt.Sprintf("%q: %s is matched exactly, wildcards are not supported", v, name)
	}
	return ""
}

// checkCIRules checks what needs the providers' kinds: CI identities only in rules for a CI
// provider of the matching kind, only CI identities in such rules, and the owner pinned.
func checkCIRules(pol *Policy, frags []*fragment, errs *errList) {
	for _, f := range frags {
		for _, r := range f.rules {
			prov, ok := pol.Providers[r.Provider]
			if !ok {
				continue // unknown or broken: reported, or denied, elsewhere
			}
			want := ciKindOf(prov.Kind)
			for _, id := range r.Identities {
				switch {
				case want == "" && isCIKind(id.Kind):
					errs.add(id.Pos, id.Kind, "a %s identity needs a CI provider (kind: %s); provider %q is of kind oidc", id.Kind, kindsFor(id.Kind), prov.Name)
				case want != "" && id.Kind != want:
					errs.add(id.Pos, id.Kind, "provider %q is of kind %s, whose rules name jobs by %s (e.g. %s: acme/deploy); an identity of kind %s could match another tenant's jobs", prov.Name, prov.Kind, want, want, id.Kind)
				case want != "" && prov.Kind != ProviderForgejoActions && !id.hasCondition(ownerPin[want]):
					errs.add(id.Pos, id.Kind, "%s %s: pin the owner with %s (the platform's numeric ID of the owner), so that whoever registers the name after a rename cannot inherit access", id.Kind, id.Value, ownerPin[want])
				}
			}
		}
	}
}

func kindsFor(idKind string) string {
	if idKind == KindProjectPath {
		return ProviderGitLabCI
	}
	return ProviderGitHubActions + " or " + ProviderForgejoActions
}

func (id Identity) hasCondition(name string) bool {
	return slices.ContainsFunc(id.Conditions, func(c Condition) bool { return c.Name == name })
}

// matchCI matches a CI identity: the repository or project path, then every condition, each equal
// to the token's claim of that name (a string, or a number or boolean as its JSON text).
func (m matcher) matchCI(id Identity) (bool, string) {
	got, ok := m.claims[id.Kind].(string)
	if !ok {
		return false, fmt.Sprintf("token has no %s string", id.Kind)
	}
	if got != id.Value {
		return false, fmt.Sprintf("token %s is %s", id.Kind, quote(got))
	}
	for _, c := range id.Conditions {
		v, ok := m.claims[c.Name]
		if !ok {
			return false, fmt.Sprintf("token has no %s claim", c.Name)
		}
		s, ok := scalarText(v)
		if !ok || s != c.Value {
			return false, fmt.Sprintf("token %s is %s, not %q", c.Name, quote(fmt.Sprint(v)), c.Value)
		}
	}
	return true, ""
}

// ciString renders a CI identity: kind:value, then each condition as ,name=value.
func (id Identity) ciString() string {
	var b strings.Builder
	b.WriteString(id.Kind + ":" + id.Value)
	for _, c := range id.Conditions {
		b.WriteString("," + c.Name + "=" + c.Value)
	}
	return b.String()
}

// ciWarnings are the CI rules that load but leave the owner unpinned (Forgejo, whose tokens may
// not carry the owner's ID).
func (p *Policy) ciWarnings() []string {
	var out []string
	for _, r := range p.Rules {
		prov := p.Providers[r.Provider]
		if prov == nil || prov.Kind != ProviderForgejoActions {
			continue
		}
		for _, id := range r.Identities {
			if id.Kind == KindRepository && !id.hasCondition("repository_owner_id") {
				out = append(out, fmt.Sprintf("%s: repository %s has no repository_owner_id: if the owner is renamed, whoever registers the old name gets this access; pin it if your Forgejo puts repository_owner_id in its tokens", id.Pos, id.Value))
			}
		}
	}
	return out
}

// ciProviderFields fills a CI provider from its block. Its tokens' expiry is always their own exp
// (minutes, for a job), it has no client IDs (the platform issues tokens to every job; the
// binding to the key is in aud or the GQ header instead), and email and group settings mean
// nothing for a job.
func (p *parser) ciProviderFields(errs *errList, prov *Provider, m map[string]entry, def *providerDef) {
	field := "providers." + prov.Name
	prov.Expiration = Expiration{UseTokenExp: true}
	prov.RequireEmailVerified = false
	if e, ok := m["issuer"]; ok {
		if s, ok := p.str(errs, e.val, field+".issuer"); ok {
			if msg := checkIssuer(s); msg != "" || strings.Contains(s, TenantPlaceholder) {
				if msg == "" {
					msg = fmt.Sprintf("%q: a CI provider has one issuer, no tenant template", s)
				}
				errs.add(p.pos(e.val), field+".issuer", "%s", msg)
			} else {
				prov.Issuer, def.issuerPos = s, p.pos(e.val)
			}
		}
	} else if iss, ok := defaultCIIssuers[prov.Kind]; ok {
		prov.Issuer, def.issuerPos = iss, prov.Pos
	} else {
		errs.add(prov.Pos, field, "missing issuer; a %s provider's issuer is the instance's URL followed by /api/actions, e.g. issuer: https://codeberg.org/api/actions", prov.Kind)
	}
	if e, ok := m["expiration"]; ok {
		if s, ok := p.str(errs, e.val, field+".expiration"); ok && s != "oidc" {
			errs.add(p.pos(e.val), field+".expiration", "a %s login lasts as long as the job's token (its exp); remove expiration or write oidc", prov.Kind)
		}
	}
	prov.RequireGQ = true
	if e, ok := m["require_gq"]; ok && !isTrue(e.val) {
		errs.add(p.pos(e.val), field+".require_gq", "a %s provider always requires GQ256; remove require_gq", prov.Kind)
	}
	for _, key := range []string{"client_ids", "tenants", "require_email_verified", "groups_claim"} {
		if e, ok := m[key]; ok {
			errs.add(p.pos(e.key), field+"."+key, "a %s provider has no %s: every job on the platform gets tokens, and rules name the job's repository or project instead; remove it", prov.Kind, key)
		}
	}
	for key, dst := range map[string]*string{"ca_file": &prov.CAFile, "jwks_file": &prov.JWKSFile} {
		if e, ok := m[key]; ok {
			if s, ok := p.str(errs, e.val, field+"."+key); ok {
				if msg := checkAbsPath(s); msg != "" {
					errs.add(p.pos(e.val), field+"."+key, "%s", msg)
				}
				*dst = s
			}
		}
	}
}

// splitCIArg parses the command-line form of a CI identity, as ciString writes it.
func splitCIArg(s, kind, rest string) (Identity, error) {
	parts := strings.Split(rest, ",")
	id := Identity{Kind: kind, Value: parts[0]}
	for _, p := range parts[1:] {
		name, value, ok := strings.Cut(p, "=")
		if !ok || !slices.Contains(ciConditions[kind], name) || value == "" {
			return Identity{}, fmt.Errorf("identity %q: after the %s come conditions NAME=VALUE, NAME one of %s", s, kind, strings.Join(ciConditions[kind], ", "))
		}
		if name == "ref_protected" && value != "true" && value != "false" {
			return Identity{}, fmt.Errorf("identity %q: ref_protected is true or false", s)
		}
		if id.hasCondition(name) {
			return Identity{}, fmt.Errorf("identity %q: %s is given twice", s, name)
		}
		id.Conditions = append(id.Conditions, Condition{Name: name, Value: value})
	}
	return id, nil
}
