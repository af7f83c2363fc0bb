package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	pol, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// onlyIdentity is a policy whose single rule has one identity.
func onlyIdentity(t *testing.T, identity string, providerExtra string) *Policy {
	return mustParse(t, "version: 1\nproviders:\n  corp:\n    issuer: https://sso.example.com\n    client_ids: [x]\n"+providerExtra+
		"rules:\n  - principals: [root]\n    provider: corp\n    identities:\n      - "+identity+"\n")
}

// claims decodes JSON the way verify does.
func claims(t *testing.T, js string) Claims {
	t.Helper()
	var c Claims
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func claimsNumber(t *testing.T, js string) Claims {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	var c Claims
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIdentityMatching(t *testing.T) {
	const verified = `"email_verified": true`
	tests := []struct {
		name     string
		identity string
		extra    string // provider fields
		token    string
		reason   string // ReasonAllowed or the expected denial
		explain  string // substring of Explain
	}{
		{"email", "email: alice@example.com", "", `{"email": "alice@example.com", ` + verified + `}`, ReasonAllowed, "allowed by rule at t.yaml:7: alice@example.com (t.yaml:10)"},
		{"email case", "email: alice@example.com", "", `{"email": "Alice@EXAMPLE.com", ` + verified + `}`, ReasonAllowed, ""},
		{"email policy case", "email: Alice@Example.COM", "", `{"email": "alice@example.com", ` + verified + `}`, ReasonAllowed, ""},
		{"email other", "email: alice@example.com", "", `{"email": "bob@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, `rule at t.yaml:7: alice@example.com (t.yaml:10): token email is "bob@example.com"`},
		{"email kelvin sign", "email: k@example.com", "", `{"email": "\u212a@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		{"email suffix", "email: alice@example.com", "", `{"email": "alice@example.com.evil.io", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		{"email unverified", "email: alice@example.com", "", `{"email": "alice@example.com", "email_verified": false}`, ReasonEmailNotVerified, "not verified"},
		{"email verified missing", "email: alice@example.com", "", `{"email": "alice@example.com"}`, ReasonEmailNotVerified, ""},
		{"email verified string", "email: alice@example.com", "", `{"email": "alice@example.com", "email_verified": "true"}`, ReasonEmailNotVerified, ""},
		{"email verified number", "email: alice@example.com", "", `{"email": "alice@example.com", "email_verified": 1}`, ReasonEmailNotVerified, ""},
		{"email verification off", "email: alice@example.com", "    require_email_verified: false\n", `{"email": "alice@example.com"}`, ReasonAllowed, ""},
		{"email missing", "email: alice@example.com", "", `{"sub": "x"}`, ReasonNoMatchingIdentity, "token has no email string"},
		{"email not string", "email: alice@example.com", "", `{"email": ["alice@example.com"], ` + verified + `}`, ReasonNoMatchingIdentity, "token has no email string"},

		{"domain", "email_domain: example.com", "", `{"email": "bob@example.com", ` + verified + `}`, ReasonAllowed, ""},
		{"domain case", "email_domain: example.com", "", `{"email": "bob@EXAMPLE.com", ` + verified + `}`, ReasonAllowed, ""},
		{"domain policy case", "email_domain: EXAMPLE.com", "", `{"email": "bob@example.COM", ` + verified + `}`, ReasonAllowed, ""},
		{"domain lookalike suffix", "email_domain: example.com", "", `{"email": "bob@example.com.evil.io", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		{"domain lookalike prefix", "email_domain: example.com", "", `{"email": "bob@evilexample.com", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		{"domain subdomain", "email_domain: example.com", "", `{"email": "bob@sub.example.com", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		{"domain last at", "email_domain: example.com", "", `{"email": "bob@example.com@evil.io", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		// Malformed addresses match no email or domain rule.
		{"domain quoted local part", "email_domain: example.com", "", `{"email": "\"x@evil.io\"@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, "does not have exactly one @"},
		{"domain two ats", "email_domain: example.com", "", `{"email": "x@evil.org@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, "does not have exactly one @"},
		{"domain quoted without at", "email_domain: example.com", "", `{"email": "\"x\"@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, "quoted part"},
		{"email leading space", "email: alice@example.com", "", `{"email": " alice@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, "white space"},
		{"email trailing newline", "email: alice@example.com", "", `{"email": "alice@example.com\n", ` + verified + `}`, ReasonNoMatchingIdentity, "white space"},
		{"email inner tab", "email_domain: example.com", "", `{"email": "al\tice@example.com", ` + verified + `}`, ReasonNoMatchingIdentity, "white space"},
		{"email empty domain", "email_domain: example.com", "", `{"email": "alice@", ` + verified + `}`, ReasonNoMatchingIdentity, "empty name or domain"},
		{"domain no at", "email_domain: example.com", "", `{"email": "example.com", ` + verified + `}`, ReasonNoMatchingIdentity, ""},
		{"domain unverified", "email_domain: example.com", "", `{"email": "bob@example.com", "email_verified": false}`, ReasonEmailNotVerified, ""},

		{"sub", `sub: "248289761001"`, "", `{"sub": "248289761001"}`, ReasonAllowed, ""},
		{"sub unquoted in policy", `sub: 248289761001`, "", `{"sub": "248289761001"}`, ReasonAllowed, ""},
		{"sub case", "sub: Abc", "", `{"sub": "abc"}`, ReasonNoMatchingIdentity, `token sub is "abc"`},
		{"sub number", `sub: "12"`, "", `{"sub": 12}`, ReasonNoMatchingIdentity, "token has no sub string"},

		{"group", "group: ssh-admins", "", `{"groups": ["dev", "ssh-admins"]}`, ReasonAllowed, ""},
		{"group missing", "group: ssh-admins", "", `{"groups": ["dev"]}`, ReasonNoMatchingIdentity, `groups claim "groups" (1 entries) does not contain it`},
		{"group case", "group: ssh-admins", "", `{"groups": ["SSH-admins"]}`, ReasonNoMatchingIdentity, ""},
		{"group as a single string", "group: ssh-admins", "", `{"groups": "ssh-admins"}`, ReasonAllowed, ""},
		{"group string never split", "group: ssh-admins", "", `{"groups": "dev,ssh-admins"}`, ReasonNoMatchingIdentity, `groups claim "groups" (1 entries) does not contain it`},
		{"group string never split on spaces", "group: ssh-admins", "", `{"groups": "dev ssh-admins"}`, ReasonNoMatchingIdentity, ""},
		{"group number", "group: \"1\"", "", `{"groups": 1}`, ReasonNoMatchingIdentity, `groups claim "groups" is neither a list nor a string`},
		{"group no claim", "group: ssh-admins", "", `{"sub": "x"}`, ReasonNoMatchingIdentity, `token has no groups claim "groups"`},
		{"group nested claim", "group: ssh-admins", "    groups_claim: realm_access.groups\n", `{"realm_access": {"groups": ["ssh-admins"]}}`, ReasonAllowed, ""},
		{"group nested top-level ignored", "group: ssh-admins", "    groups_claim: realm_access.groups\n", `{"groups": ["ssh-admins"]}`, ReasonNoMatchingIdentity, ""},
		{"group non-string entries", "group: \"1\"", "", `{"groups": [1, true, null, {"a": 1}]}`, ReasonNoMatchingIdentity, ""},

		{"claim string", "claim: {name: repository, value: org/repo}", "", `{"repository": "org/repo"}`, ReasonAllowed, ""},
		{"claim string differs", "claim: {name: repository, value: org/repo}", "", `{"repository": "org/repo2"}`, ReasonNoMatchingIdentity, `claim "repository" is "org/repo2"`},
		{"claim nested list", "claim: {name: realm_access.roles, value: admin}", "", `{"realm_access": {"roles": ["user", "admin"]}}`, ReasonAllowed, ""},
		{"claim nested list miss", "claim: {name: realm_access.roles, value: admin}", "", `{"realm_access": {"roles": ["user"]}}`, ReasonNoMatchingIdentity, `claim "realm_access.roles" (1 entries) does not contain it`},
		{"claim path through list", "claim: {name: a.b, value: x}", "", `{"a": [{"b": "x"}]}`, ReasonNoMatchingIdentity, `token has no claim "a.b"`},
		{"claim namespaced", "claim: {name: \"https://example.com/roles\", value: admin}", "", `{"https://example.com/roles": ["admin"]}`, ReasonAllowed, ""},
		{"claim bool", "claim: {name: admin, value: true}", "", `{"admin": true}`, ReasonAllowed, ""},
		{"claim bool false", "claim: {name: admin, value: true}", "", `{"admin": false}`, ReasonNoMatchingIdentity, ""},
		{"claim bool as string", "claim: {name: admin, value: \"true\"}", "", `{"admin": "true"}`, ReasonAllowed, ""},
		{"claim number", "claim: {name: level, value: 3}", "", `{"level": 3}`, ReasonAllowed, ""},
		{"claim big number", "claim: {name: id, value: 123456789012}", "", `{"id": 123456789012}`, ReasonAllowed, ""},
		{"claim number in list", "claim: {name: ids, value: 7}", "", `{"ids": [1, 7]}`, ReasonAllowed, ""},
		{"claim object", "claim: {name: a, value: x}", "", `{"a": {"x": 1}}`, ReasonNoMatchingIdentity, `claim "a" is an object`},
		{"claim null", "claim: {name: a, value: x}", "", `{"a": null}`, ReasonNoMatchingIdentity, ""},
		{"claim long value quoted short", "claim: {name: a, value: x}", "", `{"a": "` + strings.Repeat("y", 500) + `"}`, ReasonNoMatchingIdentity, `y"...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := onlyIdentity(t, tt.identity, tt.extra)
			for _, c := range []Claims{claims(t, tt.token), claimsNumber(t, tt.token)} {
				d := pol.Evaluate("root", "corp", c)
				if d.Reason != tt.reason || d.Allowed != (tt.reason == ReasonAllowed) {
					t.Fatalf("got %s (allowed %v), want %s; explain:\n%s", d.Reason, d.Allowed, tt.reason, strings.Join(d.Explain, "\n"))
				}
				if d.Allowed != (d.Rule != nil) {
					t.Errorf("Rule = %v with Allowed = %v", d.Rule, d.Allowed)
				}
				if explain := strings.Join(d.Explain, "\n"); !strings.Contains(explain, tt.explain) {
					t.Errorf("explain does not contain %q:\n%s", tt.explain, explain)
				}
				if len(strings.Join(d.Explain, "")) > 400 {
					t.Errorf("explain is too long: %q", d.Explain)
				}
			}
		})
	}
}

const evalPolicy = `version: 1
providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [x]
  ci:
    issuer: https://token.actions.example.com
    client_ids: [y]
rules:
  - principals: [root]
    provider: corp
    identities:
      - email: alice@example.com
    require:
      amr: [mfa]
  - principals: [root, deploy]
    provider: corp
    identities:
      - group: ops
  - principals: [deploy]
    provider: ci
    identities:
      - claim: {name: repository, value: org/app}
deny:
  - email: mallory@example.com
  - claim: {name: repository, value: org/evil}
    provider: ci
  - group: fired
    provider: corp
`

func TestEvaluate(t *testing.T) {
	pol := mustParse(t, evalPolicy)
	tests := []struct {
		name, principal, provider, token string
		reason                           string
		rule                             int // line of the allowing rule
		explain                          string
	}{
		{"mfa", "root", "corp", `{"email": "alice@example.com", "email_verified": true, "amr": ["pwd", "mfa"]}`, ReasonAllowed, 10, ""},
		{"no mfa", "root", "corp", `{"email": "alice@example.com", "email_verified": true, "amr": ["pwd"]}`, ReasonRequireAMR, 0, `rule at t.yaml:10: alice@example.com matched but require.amr failed: token amr lacks "mfa"`},
		{"no amr", "root", "corp", `{"email": "alice@example.com", "email_verified": true}`, ReasonRequireAMR, 0, "token has no amr claim"},
		{"amr string", "root", "corp", `{"email": "alice@example.com", "email_verified": true, "amr": "mfa"}`, ReasonRequireAMR, 0, "token amr is not a list"},
		{"second rule", "root", "corp", `{"groups": ["ops"]}`, ReasonAllowed, 16, ""},
		{"principal case", "Root", "corp", `{"groups": ["ops"]}`, ReasonNoRule, 0, `no rule for provider "corp" lists principal "Root"`},
		{"no rule", "bob", "corp", `{"groups": ["ops"]}`, ReasonNoRule, 0, ""},
		{"rule for other provider", "deploy", "ci", `{"groups": ["ops"]}`, ReasonNoMatchingIdentity, 0, `rule at t.yaml:20: claim:repository=org/app (t.yaml:23): token has no claim "repository"`},
		{"hint other provider", "root", "ci", `{"repository": "org/app"}`, ReasonNoRule, 0, `rule at t.yaml:10 lists "root" but for provider "corp"`},
		{"ci", "deploy", "ci", `{"repository": "org/app"}`, ReasonAllowed, 20, ""},
		{"deny beats allow", "root", "corp", `{"email": "mallory@example.com", "email_verified": true, "groups": ["ops"]}`, ReasonDenyList, 0, "deny entry at t.yaml:25 (mallory@example.com) matches"},
		{"deny ignores verification", "root", "corp", `{"email": "MALLORY@example.com", "groups": ["ops"]}`, ReasonDenyList, 0, ""},
		// An address the email rules cannot read cannot show it is not the denied one: deny.
		{"deny email, email malformed", "root", "corp", `{"email": "mallory@example.com ", "email_verified": true, "groups": ["ops"]}`, ReasonDenyList, 0, "t.yaml:25"},
		{"deny scoped other provider", "deploy", "ci", `{"repository": "org/app", "groups": ["fired"]}`, ReasonAllowed, 20, ""},
		{"deny scoped", "root", "corp", `{"groups": ["ops", "fired"]}`, ReasonDenyList, 0, "t.yaml:28"},
		{"deny group as a single string", "root", "corp", `{"groups": "fired"}`, ReasonDenyList, 0, "t.yaml:28"},
		// A groups claim of another shape cannot show the person is not in the group: deny.
		{"deny group, groups unreadable", "root", "corp", `{"email": "alice@example.com", "email_verified": true, "amr": ["mfa"], "groups": {"fired": true}}`, ReasonDenyList, 0, "t.yaml:28"},
		{"control: same token, groups a list", "root", "corp", `{"email": "alice@example.com", "email_verified": true, "amr": ["mfa"], "groups": ["dev"]}`, ReasonAllowed, 10, ""},
		{"invalid principal", "root\n", "corp", `{"groups": ["ops"]}`, ReasonInvalidPrincipal, 0, ""},
		{"invalid principal option", "-oProxyCommand=x", "corp", `{"groups": ["ops"]}`, ReasonInvalidPrincipal, 0, ""},
		{"empty principal", "", "corp", `{"groups": ["ops"]}`, ReasonInvalidPrincipal, 0, ""},
		{"unknown provider", "root", "nope", `{"groups": ["ops"]}`, ReasonUnknownProvider, 0, ""},
		{"empty claims", "root", "corp", `{}`, ReasonNoMatchingIdentity, 0, "token has no email string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pol.Evaluate(tt.principal, tt.provider, claims(t, tt.token))
			explain := strings.Join(d.Explain, "\n")
			if d.Reason != tt.reason || d.Allowed != (tt.reason == ReasonAllowed) {
				t.Fatalf("got %s, want %s; explain:\n%s", d.Reason, tt.reason, explain)
			}
			if tt.rule != 0 && (d.Rule == nil || d.Rule.Pos.Line != tt.rule) {
				t.Errorf("rule = %+v, want line %d", d.Rule, tt.rule)
			}
			if !strings.Contains(explain, tt.explain) {
				t.Errorf("explain does not contain %q:\n%s", tt.explain, explain)
			}
		})
	}
}

func TestEvaluateNilPolicy(t *testing.T) {
	var pol *Policy
	if d := pol.Evaluate("root", "corp", Claims{}); d.Allowed {
		t.Error("nil policy allowed")
	}
	if _, ok := pol.ProviderByIssuer("x"); ok {
		t.Error("nil policy has a provider")
	}
}

func TestClaimRulesOnPerTokenFieldsRefused(t *testing.T) {
	for _, name := range []string{"typ", "client_id", "azp", "nonce", "at_hash", "c_hash", "sid", "jti", "iat", "exp", "nbf", "auth_time", "cid", "uti"} {
		src := "version: 1\nproviders:\n  p:\n    issuer: https://op.example.com\n    client_ids: [opkssh]\nrules:\n  - principals: [alice]\n    provider: p\n    identities:\n      - claim: {name: " + name + ", value: ID}\n"
		_, err := Parse("t.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "t.yaml:10") || !strings.Contains(err.Error(), "does not identify a person") {
			t.Errorf("claim %s: %v", name, err)
		}
	}
}

func TestWarningsOnOrgWideClaims(t *testing.T) {
	src := `version: 1
providers:
  p:
    issuer: https://op.example.com
    client_ids: [opkssh]
rules:
  - principals: [alice]
    provider: p
    identities:
      - claim: {name: tid, value: 1111}
      - claim: {name: app, value: opkssh}
      - claim: {name: realm_access.roles, value: admin}
`
	pol, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w := pol.Warnings()
	if len(w) != 2 || !strings.Contains(w[0], "t.yaml:10") || !strings.Contains(w[0], "tenant") || !strings.Contains(w[1], "t.yaml:11") || !strings.Contains(w[1], "client ID") {
		t.Fatalf("warnings: %q", w)
	}
}
