package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const fullPolicy = `version: 1
providers:
  corp:
    issuer: https://sso.example.com/realms/main
    client_ids: [opkssh, other]
    expiration: 12h
    ca_file: /etc/opkssh/corp-ca.pem
    jwks_file: /etc/opkssh/corp-jwks.json
    require_email_verified: false
    groups_claim: realm_access.groups
  gitlab:
    issuer: http://127.0.0.1:8080
    client_ids: [x]
    expiration: oidc
rules:
  - principals: [root, deploy]
    provider: corp
    identities:
      - email: alice@example.com
      - email_domain: example.com
      - sub: 248289761001
      - group: ssh-admins
      - claim: {name: realm_access.roles, value: true}
    require:
      amr: [mfa, hwk]
    comment: "on call"
deny:
  - email: mallory@example.com
  - group: contractors
    provider: gitlab
`

func TestParseFull(t *testing.T) {
	pol, err := Parse("p.yaml", []byte(fullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	corp := pol.Providers["corp"]
	want := &Provider{
		Name: "corp", Issuer: "https://sso.example.com/realms/main", ClientIDs: []string{"opkssh", "other"},
		Expiration: Expiration{FromIAT: 12 * time.Hour}, CAFile: "/etc/opkssh/corp-ca.pem",
		JWKSFile: "/etc/opkssh/corp-jwks.json", RequireEmailVerified: false,
		GroupsClaim: "realm_access.groups", Pos: Position{"p.yaml", 3},
	}
	if !reflect.DeepEqual(corp, want) {
		t.Errorf("corp = %+v\nwant %+v", corp, want)
	}
	gl := pol.Providers["gitlab"]
	if !gl.Expiration.UseTokenExp || gl.Expiration.FromIAT != 0 || !gl.RequireEmailVerified || gl.GroupsClaim != "groups" {
		t.Errorf("gitlab defaults wrong: %+v", gl)
	}
	if len(pol.Rules) != 1 {
		t.Fatalf("rules = %d", len(pol.Rules))
	}
	r := pol.Rules[0]
	wantIDs := []Identity{
		{Kind: KindEmail, Value: "alice@example.com", Pos: Position{"p.yaml", 19}},
		{Kind: KindEmailDomain, Value: "example.com", Pos: Position{"p.yaml", 20}},
		{Kind: KindSub, Value: "248289761001", Pos: Position{"p.yaml", 21}},
		{Kind: KindGroup, Value: "ssh-admins", Pos: Position{"p.yaml", 22}},
		{Kind: KindClaim, ClaimName: "realm_access.roles", Value: "true", Pos: Position{"p.yaml", 23}},
	}
	if !reflect.DeepEqual(r.Identities, wantIDs) {
		t.Errorf("identities = %+v", r.Identities)
	}
	if !reflect.DeepEqual(r.Principals, []string{"root", "deploy"}) || r.Provider != "corp" ||
		!reflect.DeepEqual(r.RequireAMR, []string{"mfa", "hwk"}) || r.Comment != "on call" || r.Pos.Line != 16 {
		t.Errorf("rule = %+v", r)
	}
	wantDeny := []Identity{
		{Kind: KindEmail, Value: "mallory@example.com", Pos: Position{"p.yaml", 28}},
		{Kind: KindGroup, Value: "contractors", Provider: "gitlab", Pos: Position{"p.yaml", 29}},
	}
	if !reflect.DeepEqual(pol.Deny, wantDeny) {
		t.Errorf("deny = %+v", pol.Deny)
	}
	if len(pol.Broken) != 0 || !reflect.DeepEqual(pol.Files, []string{"p.yaml"}) {
		t.Errorf("broken = %v files = %v", pol.Broken, pol.Files)
	}
	if p, ok := pol.ProviderByIssuer("http://127.0.0.1:8080"); !ok || p.Name != "gitlab" {
		t.Errorf("ProviderByIssuer = %v %v", p, ok)
	}
	if _, ok := pol.ProviderByIssuer("http://127.0.0.1:8080/"); ok {
		t.Error("ProviderByIssuer must compare exactly")
	}
}

// head is a valid start that the error cases build on; lines 1-5.
const head = `version: 1
providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
`

// okRule is a valid rules section; lines 6-10 after head.
const okRule = `rules:
  - principals: [root]
    provider: corp
    identities:
      - email: alice@example.com
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // "line: field: text" the error must contain after "t.yaml:"
	}{
		{"syntax", "version: 1\nrules: [\n", "2: YAML syntax error"},
		{"tab indentation", "version: 1\nproviders:\n\tcorp: {}\n", "3: YAML syntax error: found character that cannot start any token; indent with spaces"},
		{"empty file", "", "1: file is empty"},
		{"comments only", "# nothing\n", "1: file"},
		{"not a mapping", "- a\n- b\n", "1: expected a mapping"},
		{"missing version", "providers:\n  corp:\n    issuer: https://a.example\n    client_ids: [x]\n", "1: version: missing"},
		{"version 2", "version: 2\n", "1: version: must be 1"},
		{"version string", "version: \"1\"\n", "1: version: must be 1"},
		{"unknown top key", head + "rule:\n  - x\n", "6: unknown key \"rule\" (known: version, providers, rules, deny, user_policies, signers, chain)"},
		{"duplicate top key", head + okRule + "version: 1\n", "11: duplicate key \"version\" (first at line 1)"},
		{"two documents", head + "---\nversion: 1\n", "6: a second YAML document"},
		{"anchor", head + "rules:\n  - &r {principals: [root], provider: corp, identities: [{email: a@b.c}]}\n", "7: YAML anchor &r"},
		{"alias", "version: 1\nx: &a [1]\ny: *a\n", "3: YAML alias *a"},
		{"merge key", head + okRule + "  - <<: {}\n", "11: rules[1]: unknown key \"<<\""},
		{"rules not a list", head + "rules: {a: b}\n", "6: rules: expected a list"},
		{"rules empty", head + "rules: []\n", "6: rules: is an empty list"},
		{"rules null", head + "rules:\n", "6: rules: is empty"},
		{"providers empty", "version: 1\nproviders: {}\n", "2: providers: is empty"},
		{"providers list", "version: 1\nproviders: [a]\n", "2: providers: expected a mapping"},
		{"unknown rule key", head + okRule + "    principal: [x]\n", "11: rules[0]: unknown key \"principal\""},
		{"missing principals", head + "rules:\n  - provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0]: missing principals"},
		{"missing provider", head + "rules:\n  - principals: [root]\n    identities: [{email: a@b.c}]\n", "7: rules[0]: missing provider"},
		{"missing identities", head + "rules:\n  - principals: [root]\n    provider: corp\n", "7: rules[0]: missing identities"},
		{"principals string", head + "rules:\n  - principals: root\n    provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0].principals: expected a list, found a string; write [root]"},
		{"principals empty", head + "rules:\n  - principals: []\n    provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0].principals: is an empty list"},
		{"principal wildcard", head + "rules:\n  - principals: ['*']\n    provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0].principals[0]: \"*\" is not a valid user name"},
		{"principal dash", head + "rules:\n  - principals: [-oProxy]\n    provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0].principals[0]: \"-oProxy\" is not a valid user name"},
		{"principal too long", head + "rules:\n  - principals: [" + strings.Repeat("a", 33) + "]\n    provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0].principals[0]"},
		{"principal space", head + "rules:\n  - principals: [\"a b\"]\n    provider: corp\n    identities: [{email: a@b.c}]\n", "7: rules[0].principals[0]: \"a b\" is not a valid user name"},
		{"unknown provider", head + "rules:\n  - principals: [root]\n    provider: crop\n    identities: [{email: a@b.c}]\n", "8: rules[0].provider: unknown provider \"crop\" (defined: corp)"},
		{"identities empty", head + "rules:\n  - principals: [root]\n    provider: corp\n    identities: []\n", "9: rules[0].identities: is an empty list"},
		{"identity typo", head + okRule + "      - emial: bob@example.com\n", "11: rules[0].identities[1]: unknown key \"emial\" (known: email, email_domain, sub, group, claim, repository, project_path)"},
		{"identity two keys", head + okRule + "      - email: bob@example.com\n        sub: x\n", "11: rules[0].identities[1]: has email and sub; give exactly one"},
		{"identity none", head + okRule + "      - {}\n", "11: rules[0].identities[1]: has no identity"},
		{"identity scalar", head + okRule + "      - bob@example.com\n", "11: rules[0].identities[1]: expected a mapping such as email"},
		{"identity provider in rule", head + okRule + "      - email: bob@example.com\n        provider: corp\n", "12: rules[0].identities[1]: unknown key \"provider\""},
		{"empty email", head + okRule + "      - email: \"\"\n", "11: rules[0].identities[1].email: is empty"},
		{"null email", head + okRule + "      - email:\n", "11: rules[0].identities[1].email: is empty"},
		{"email list", head + okRule + "      - email: [a@b.c]\n", "11: rules[0].identities[1].email: expected a string, found a list"},
		{"email no at", head + okRule + "      - email: bob\n", "11: rules[0].identities[1].email: \"bob\" is not an email address"},
		{"email no domain", head + okRule + "      - email: bob@\n", "11: rules[0].identities[1].email: \"bob@\" is not an email address"},
		{"email only domain", head + okRule + "      - email: \"@example.com\"\n", "11: rules[0].identities[1].email: \"@example.com\" is not an email address"},
		{"domain no dot", head + okRule + "      - email_domain: com\n", "11: rules[0].identities[1].email_domain: \"com\" has no dot"},
		{"domain leading dot", head + okRule + "      - email_domain: .example.com\n", "11: rules[0].identities[1].email_domain: \".example.com\" starts with a dot"},
		{"domain at", head + okRule + "      - email_domain: \"@example.com\"\n", "11: rules[0].identities[1].email_domain: \"@example.com\" must be a bare domain"},
		{"domain wildcard", head + okRule + "      - email_domain: \"*.example.com\"\n", "11: rules[0].identities[1].email_domain: \"*.example.com\" must be a bare domain"},
		{"domain trailing dot", head + okRule + "      - email_domain: example.com.\n", "11: rules[0].identities[1].email_domain: \"example.com.\" has an empty label"},
		{"domain empty", head + okRule + "      - email_domain: \"\"\n", "11: rules[0].identities[1].email_domain: is empty"},
		{"sub spaces", head + okRule + "      - sub: \" x\"\n", "11: rules[0].identities[1].sub: has leading or trailing spaces"},
		{"sub newline", head + okRule + "      - sub: \"a\\nb\"\n", "11: rules[0].identities[1].sub: contains a control character"},
		{"sub block scalar", head + okRule + "      - sub: |\n          abc\n", "11: rules[0].identities[1].sub: contains a control character"},
		{"group tag", head + okRule + "      - group: !!binary aGk=\n", "11: rules[0].identities[1].group: YAML tag !!binary is not allowed"},
		{"group custom tag", head + okRule + "      - group: !env X\n", "11: rules[0].identities[1].group: YAML tag !env is not allowed"},
		{"claim string", head + okRule + "      - claim: roles=admin\n", "11: rules[0].identities[1].claim: expected a mapping"},
		{"claim no value", head + okRule + "      - claim: {name: roles}\n", "11: rules[0].identities[1].claim: missing value"},
		{"claim empty value", head + okRule + "      - claim: {name: roles, value: \"\"}\n", "11: rules[0].identities[1].claim.value: is empty"},
		{"claim empty name", head + okRule + "      - claim: {name: \"\", value: x}\n", "11: rules[0].identities[1].claim.name: is empty"},
		{"claim bad path", head + okRule + "      - claim: {name: a..b, value: x}\n", "11: rules[0].identities[1].claim: claim name \"a..b\" has an empty segment"},
		{"claim iss", head + okRule + "      - claim: {name: iss, value: \"https://sso.example.com\"}\n", "11: rules[0].identities[1].claim: claim \"iss\" does not identify a person"},
		{"claim email", head + okRule + "      - claim: {name: email, value: a@b.c}\n", "11: rules[0].identities[1].claim: claim \"email\" does not identify a person"},
		{"claim amr", head + okRule + "      - claim: {name: amr, value: mfa}\n", "11: rules[0].identities[1].claim: claim \"amr\" does not identify a person and would match (nearly) every token; to require an authentication method use require: {amr: [...]}"},
		{"claim extra key", head + okRule + "      - claim: {name: a, value: b, regex: c}\n", "11: rules[0].identities[1].claim: unknown key \"regex\" (known: name, value)"},
		{"require empty", head + okRule + "    require: {}\n", "11: rules[0].require: has no conditions"},
		{"require unknown", head + okRule + "    require: {acr: x}\n", "11: rules[0].require: unknown key \"acr\" (known: amr, from)"},
		{"amr empty", head + okRule + "    require: {amr: []}\n", "11: rules[0].require.amr: is an empty list"},
		{"amr string", head + okRule + "    require: {amr: mfa}\n", "11: rules[0].require.amr: expected a list, found a string; write [mfa]"},
		{"comment list", head + okRule + "    comment: [a]\n", "11: rules[0].comment: expected text"},
		{"duplicate rule key", head + okRule + "    provider: corp\n", "11: rules[0]: duplicate key \"provider\" (first at line 8)"},
		{"deny unknown key", head + "deny:\n  - mail: x@y.z\n", "7: deny[0]: unknown key \"mail\" (known: email, email_domain, sub, group, claim, repository, project_path, provider)"},
		{"deny unknown provider", head + "deny:\n  - email: x@y.z\n    provider: nope\n", "8: deny[0].provider: unknown provider \"nope\""},
		{"deny empty value", head + "deny:\n  - sub: \"\"\n", "7: deny[0].sub: is empty"},
		{"deny not list", head + "deny: {email: x@y.z}\n", "6: deny: expected a list"},
		{"duplicate provider", head + "  corp:\n    issuer: https://b.example\n    client_ids: [x]\n", "6: providers: duplicate key \"corp\" (first at line 3)"},
		{"duplicate issuer", head + "  corp2:\n    issuer: https://sso.example.com\n    client_ids: [x]\n", "7: providers.corp2.issuer: provider \"corp\" (t.yaml:3) has the same issuer"},
		{"non-scalar key", head + okRule + "    ? [a]\n    : b\n", "11: rules[0]: keys must be plain names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := Parse("t.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; policy %+v", pol)
			}
			if pol != nil {
				t.Error("a policy was returned with an error")
			}
			if !strings.Contains(err.Error(), "t.yaml:"+tt.want) {
				t.Errorf("error does not contain %q:\n%v", "t.yaml:"+tt.want, err)
			}
		})
	}
}

func TestParseErrorsAreCollected(t *testing.T) {
	src := head + okRule + "      - emial: a\n      - email: \"\"\ndeny:\n  - sub: \"\"\n"
	_, err := Parse("t.yaml", []byte(src))
	for _, want := range []string{"t.yaml:11:", "t.yaml:12:", "t.yaml:14:"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("missing %s in:\n%v", want, err)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Pos.Line != 11 || e.Field != "rules[0].identities[1]" {
		t.Errorf("errors.As: %+v", e)
	}
}

func TestParseErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + okRule)
	for i := 0; i < 50; i++ {
		b.WriteString("      - email: \"\"\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()))
	msg := fmt.Sprint(err)
	if n := strings.Count(msg, "t.yaml:"); n != maxErrors {
		t.Errorf("%d errors reported, want %d", n, maxErrors)
	}
	if !strings.Contains(msg, "and 30 more errors") {
		t.Errorf("no summary of the dropped errors:\n%s", msg)
	}
}

func TestParseTooLarge(t *testing.T) {
	data := []byte(head + "# " + strings.Repeat("x", maxFileSize) + "\n")
	_, err := Parse("t.yaml", data)
	if err == nil || !strings.Contains(err.Error(), "t.yaml:1: file is larger than 4 MiB") {
		t.Errorf("err = %v", err)
	}
}

func TestParseAliasBomb(t *testing.T) {
	src := "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	_, err := Parse("t.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "anchor") {
		t.Errorf("err = %v", err)
	}
}

// TestBrokenProvider checks that a problem inside one provider block marks
// only that provider broken and leaves the others usable.
func TestBrokenProvider(t *testing.T) {
	good := "  good:\n    issuer: https://good.example\n    client_ids: [g]\n"
	rules := "rules:\n  - principals: [root]\n    provider: bad\n    identities: [{email: a@b.c}]\n" +
		"  - principals: [root]\n    provider: good\n    identities: [{email: a@b.c}]\n"
	tests := []struct{ name, block, want string }{
		{"http issuer", "    issuer: http://sso.example.com\n    client_ids: [x]\n", "t.yaml:4: providers.bad.issuer: \"http://sso.example.com\" uses http"},
		{"issuer query", "    issuer: https://sso.example.com/?a=b\n    client_ids: [x]\n", "providers.bad.issuer: \"https://sso.example.com/?a=b\" has a query"},
		{"issuer no scheme", "    issuer: sso.example.com\n    client_ids: [x]\n", "providers.bad.issuer: \"sso.example.com\" must start with https://"},
		{"issuer user", "    issuer: https://u:p@sso.example.com\n    client_ids: [x]\n", "contains a user name or password"},
		{"missing issuer", "    client_ids: [x]\n", "t.yaml:3: providers.bad: missing issuer"},
		{"empty client_ids", "    issuer: https://a.example\n    client_ids: []\n", "t.yaml:5: providers.bad.client_ids: is an empty list"},
		{"client_ids string", "    issuer: https://a.example\n    client_ids: x\n", "providers.bad.client_ids: expected a list, found a string"},
		{"missing client_ids", "    issuer: https://a.example\n", "t.yaml:3: providers.bad: missing client_ids"},
		{"bad expiration", "    issuer: https://a.example\n    client_ids: [x]\n    expiration: 1d\n", "t.yaml:6: providers.bad.expiration: \"1d\" is neither"},
		{"zero expiration", "    issuer: https://a.example\n    client_ids: [x]\n    expiration: 0s\n", "providers.bad.expiration: 0s is out of range"},
		{"long expiration", "    issuer: https://a.example\n    client_ids: [x]\n    expiration: 721h\n", "providers.bad.expiration: 721h is out of range"},
		{"relative ca_file", "    issuer: https://a.example\n    client_ids: [x]\n    ca_file: ca.pem\n", "providers.bad.ca_file: \"ca.pem\" is not an absolute path"},
		{"relative jwks_file", "    issuer: https://a.example\n    client_ids: [x]\n    jwks_file: ./k.json\n", "providers.bad.jwks_file: \"./k.json\" is not an absolute path"},
		{"verified string", "    issuer: https://a.example\n    client_ids: [x]\n    require_email_verified: \"no\"\n", "providers.bad.require_email_verified: expected true or false"},
		{"groups path", "    issuer: https://a.example\n    client_ids: [x]\n    groups_claim: a.\n", "providers.bad.groups_claim: \"a.\" has an empty segment"},
		{"unknown key", "    issuer: https://a.example\n    client_ids: [x]\n    client_id: x\n", "t.yaml:6: providers.bad: unknown key \"client_id\""},
		{"not a mapping", "    [x]\n", "providers.bad: expected a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\nproviders:\n  bad:\n" + tt.block + good + rules
			pol, err := Parse("t.yaml", []byte(src))
			if err != nil {
				t.Fatalf("the whole policy failed: %v", err)
			}
			berr := pol.Broken["bad"]
			if berr == nil || !strings.Contains(berr.Error(), tt.want) {
				t.Fatalf("Broken[bad] = %v, want it to contain %q", berr, tt.want)
			}
			if _, ok := pol.Providers["bad"]; ok {
				t.Error("a broken provider is in Providers")
			}
			if p, ok := pol.ProviderByIssuer("https://a.example"); ok && (p.Name != "bad" || pol.Broken[p.Name] == nil) {
				t.Errorf("ProviderByIssuer = %+v", p)
			}
			if p, ok := pol.ProviderByIssuer("https://good.example"); !ok || p.Name != "good" {
				t.Errorf("ProviderByIssuer(good) = %+v", p)
			}
			if _, ok := pol.ProviderByIssuer(""); ok {
				t.Error("ProviderByIssuer matched an empty issuer")
			}
			c := Claims{"email": "a@b.c", "email_verified": true}
			if d := pol.Evaluate("root", "bad", c); d.Allowed || d.Reason != ReasonProviderBroken {
				t.Errorf("bad: %+v", d)
			}
			if d := pol.Evaluate("root", "good", c); !d.Allowed {
				t.Errorf("good: %+v", d)
			}
		})
	}
}

// A broken provider with a valid issuer is found by issuer, so verify can
// say provider_broken instead of unknown issuer.
func TestProviderByIssuerBroken(t *testing.T) {
	pol := mustParse(t, "version: 1\nproviders:\n  bad:\n    issuer: https://a.example\n    client_ids: []\n")
	p, ok := pol.ProviderByIssuer("https://a.example")
	if !ok || p.Name != "bad" || pol.Broken["bad"] == nil || pol.Providers["bad"] != nil {
		t.Errorf("ProviderByIssuer = %+v %v; Broken = %v", p, ok, pol.Broken)
	}
}

func TestBrokenProviderName(t *testing.T) {
	src := "version: 1\nproviders:\n  Corp:\n    issuer: https://a.example\n    client_ids: [x]\n"
	pol, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if e := pol.Broken["Corp"]; e == nil || !strings.Contains(e.Error(), "t.yaml:3: providers.Corp: provider name \"Corp\" is not allowed") {
		t.Errorf("Broken = %v", pol.Broken)
	}
}

// A provider broken for another reason still takes part in the duplicate
// issuer check, which fails the whole load.
func TestDuplicateIssuerWithBrokenProvider(t *testing.T) {
	src := head + "  other:\n    issuer: https://sso.example.com\n    client_ids: []\n"
	if _, err := Parse("t.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "same issuer") {
		t.Errorf("err = %v", err)
	}
}

func TestLoopbackIssuers(t *testing.T) {
	for _, iss := range []string{"http://localhost:3000", "http://127.0.0.1", "http://127.9.9.9:1/x", "http://[::1]:8080", "https://sso.example.com/"} {
		if msg := checkIssuer(iss); msg != "" {
			t.Errorf("%s: %s", iss, msg)
		}
	}
	for _, iss := range []string{"http://localhost.evil.com", "http://128.0.0.1", "http://[::2]", "http://example.com", "ftp://a.example", "https://", "https://a.example#x", "https://a.example?"} {
		if msg := checkIssuer(iss); msg == "" {
			t.Errorf("%s accepted", iss)
		}
	}
}

func TestValidPrincipal(t *testing.T) {
	for _, ok := range []string{"root", "a", "_x", "0day", "deploy.bot", "a-b", "ABC", strings.Repeat("a", 32)} {
		if !ValidPrincipal(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "..", "a b", "a\"", "a,b", "a$", "é", strings.Repeat("a", 33), "a\n", "opkssh-wildcard\x00"} {
		if ValidPrincipal(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
