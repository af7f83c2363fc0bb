package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Policy is a loaded, validated policies.yaml (plus its drop-ins).
//
// A provider name appears in exactly one of Providers and Broken: Providers
// holds only usable providers, so code that ranges over it can never pick up
// a provider whose block failed validation.
type Policy struct {
	Providers map[string]*Provider
	Rules     []Rule
	Deny      []Identity
	// Signers are the signers section: whose signatures are accepted (not logins).
	Signers []Signer
	// Broken maps the name of each provider whose block has an error to that
	// error. Rules for it stay loaded but evaluate to ReasonProviderBroken.
	Broken map[string]error
	// Files lists the files loaded, in merge order.
	Files []string
	// UserPolicies says whether users' own files may grant logins to their account; the zero value
	// (no user_policies block) means never.
	UserPolicies UserPolicies
	// Chain is the command verify runs for keys that are not opkssh certificates; nil for none.
	Chain *Chain

	// brokenByName keeps what could be read of broken providers, so that
	// ProviderByIssuer can name the provider a token belongs to.
	brokenByName map[string]*Provider
}

// Provider is one entry of the providers section: an OpenID Provider and how
// its tokens are checked.
type Provider struct {
	Name string
	// Kind is ProviderOIDC (also when empty) or a CI platform's kind (ci.go).
	Kind string
	// Issuer is compared with the token's iss exactly, with two exceptions (TokenIssuer): a
	// template holding TenantPlaceholder, and Google's scheme-less form.
	Issuer string
	// Tenants are the tenant IDs a template issuer accepts; empty for any other issuer.
	Tenants    []string
	ClientIDs  []string // the token's aud must contain one of them
	Expiration Expiration
	CAFile     string // extra TLS roots for discovery and JWKS; "" = system roots
	JWKSFile   string // pinned keys; "" = fetch the JWKS from the issuer
	// RequireEmailVerified makes email and email_domain identities match only
	// when the token's email_verified is the JSON boolean true.
	RequireEmailVerified bool
	GroupsClaim          string // dotted path of the groups claim
	// RequireGQ accepts only PK tokens whose OP signature is a GQ256 proof (login --gq), so that no
	// certificate carries an ID token that could be replayed elsewhere; CI providers always do.
	RequireGQ bool
	Pos       Position
}

// Expiration says how long a token stays acceptable. Exactly one field is
// set: FromIAT is a lifetime counted from the token's iat, UseTokenExp means
// the token's own exp decides.
type Expiration struct {
	FromIAT     time.Duration
	UseTokenExp bool
}

// String returns the expiration as written in policies.yaml.
func (e Expiration) String() string {
	if e.UseTokenExp {
		return "oidc"
	}
	return e.FromIAT.String()
}

// Rule lets any of Identities log in as any of Principals, when the token
// comes from Provider and satisfies RequireAMR and RequireFrom.
type Rule struct {
	Principals []string
	Provider   string
	Identities []Identity
	RequireAMR []string // every value must be in the token's amr claim
	// RequireFrom, when set, limits the rule to clients whose address is in one of these networks
	// (sshd passes the address to verify with %C).
	RequireFrom []netip.Prefix
	// PrincipalsFrom names the claim whose values are the principals, instead of Principals
	// (see principals.go); PrincipalsAllowed are the globs a value must match.
	PrincipalsFrom    string   `json:",omitempty"`
	PrincipalsAllowed []string `json:",omitempty"`
	// Options are authorized_keys options (options.go), appended to the line verify prints.
	Options []string `json:",omitempty"`
	// Broken says why this rule can never allow (an invalid options entry, say); other rules are
	// unaffected. "" for a usable rule.
	Broken  string `json:",omitempty"`
	Comment string
	Pos     Position
}

// Identity kinds, the keys of an identity entry.
const (
	KindEmail       = "email"
	KindEmailDomain = "email_domain"
	KindSub         = "sub"
	KindGroup       = "group"
	KindClaim       = "claim"
)

// Identity is one entry of a rule's identities or of the deny list.
type Identity struct {
	Kind      string // one of the Kind constants
	Value     string
	ClaimName string // for KindClaim: dotted path of the claim
	Provider  string // deny entries only: limit the entry to this provider; "" = all
	// Conditions are a CI identity's further claims (KindRepository, KindProjectPath), all required.
	Conditions []Condition
	Pos        Position
}

// String returns the identity in the form ParseIdentityArg accepts, without
// the deny-only provider scope.
func (id Identity) String() string {
	switch id.Kind {
	case KindEmail:
		if strings.Contains(id.Value, ":") {
			return "email:" + id.Value
		}
		return id.Value
	case KindEmailDomain:
		return "domain:" + id.Value
	case KindClaim:
		return "claim:" + id.ClaimName + "=" + id.Value
	case KindRepository, KindProjectPath:
		return id.ciString()
	default:
		return id.Kind + ":" + id.Value
	}
}

// sameAs reports whether two identities match the same tokens; positions and
// deny scopes are ignored.
func (id Identity) sameAs(o Identity) bool {
	if id.Kind != o.Kind {
		return false
	}
	switch id.Kind {
	case KindEmail, KindEmailDomain:
		return asciiEqualFold(id.Value, o.Value)
	case KindClaim:
		return id.ClaimName == o.ClaimName && id.Value == o.Value
	case KindRepository, KindProjectPath:
		return id.Value == o.Value && slices.Equal(id.Conditions, o.Conditions)
	default:
		return id.Value == o.Value
	}
}

// Position is where something was defined.
type Position struct {
	File string
	Line int
}

func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Error is one problem found while loading a policy. Load and Parse return
// these joined with errors.Join; use errors.As to get at one.
type Error struct {
	Pos   Position
	Field string // e.g. "rules[2].identities[0]"; "" for the file as a whole
	Msg   string // the problem and what to do about it
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Field, e.Msg)
}

// TenantPlaceholder stands for the tenant ID in a multi-tenant issuer, as Microsoft Entra's
// discovery documents for /common and /organizations write it.
const TenantPlaceholder = "{tenantid}"

// googleIssuer is the one issuer whose tokens may carry iss without a scheme: Google documents
// that its ID tokens say either https://accounts.google.com or accounts.google.com.
const googleIssuer = "https://accounts.google.com"

// TokenIssuer says whether a token with issuer iss (and, for Entra, tenant tid) belongs to p, and
// returns the concrete issuer whose discovery document and keys check it:
//   - p.Issuer itself, when iss equals it;
//   - for a template, the template with tid in place of the placeholder, when tid is one of
//     p.Tenants and iss equals that;
//   - for https://accounts.google.com, also when iss is accounts.google.com.
func (p *Provider) TokenIssuer(iss, tid string) (string, bool) {
	switch {
	case p.Issuer == "":
		return "", false
	case strings.Contains(p.Issuer, TenantPlaceholder):
		if tid == "" || !slices.Contains(p.Tenants, tid) {
			return "", false
		}
		concrete := strings.Replace(p.Issuer, TenantPlaceholder, tid, 1)
		return concrete, iss == concrete
	case iss == p.Issuer:
		return p.Issuer, true
	case p.Issuer == googleIssuer && iss == strings.TrimPrefix(googleIssuer, "https://"):
		return p.Issuer, true
	}
	return "", false
}

// ProviderForToken returns the provider a token with issuer iss and tenant tid belongs to, and the
// concrete issuer (see TokenIssuer). Like ProviderByIssuer it may return a broken provider.
func (p *Policy) ProviderForToken(iss, tid string) (*Provider, string, bool) {
	if p == nil {
		return nil, "", false
	}
	for _, m := range []map[string]*Provider{p.Providers, p.brokenByName} {
		for _, prov := range m {
			if concrete, ok := prov.TokenIssuer(iss, tid); ok {
				return prov, concrete, true
			}
		}
	}
	return nil, "", false
}

// ProviderByIssuer returns the provider whose issuer equals iss exactly.
// This may be a broken provider (one whose issuer was valid but another field
// was not), so that a caller can report ReasonProviderBroken rather than an
// unknown issuer: check Broken[p.Name] before using it. Evaluate denies for
// a broken provider in any case.
func (p *Policy) ProviderByIssuer(iss string) (*Provider, bool) {
	if p == nil {
		return nil, false
	}
	for _, m := range []map[string]*Provider{p.Providers, p.brokenByName} {
		for _, prov := range m {
			if prov.Issuer != "" && prov.Issuer == iss {
				return prov, true
			}
		}
	}
	return nil, false
}
