package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	pol := mustParse(t, `version: 1
providers:
  zeta:
    issuer: https://zeta.example.com
    client_ids: [a, b]
    expiration: 90m
  broken:
    issuer: https://broken.example.com
    client_ids: [x]
    expiration: 3d
  alpha:
    issuer: https://alpha.example.com
    client_ids: [c]
    expiration: oidc
rules:
  - principals: [root, deploy]
    provider: zeta
    identities: [{email: a@example.com}, {claim: {name: dept, value: eng}}]
    require: {amr: [mfa]}
  - principals: [alice]
    provider: alpha
    identities: [{sub: "1"}]
deny:
  - email_domain: evil.example
    provider: alpha
`)
	l := pol.List("")
	var names, exps []string
	for _, p := range l.Providers {
		names, exps = append(names, p.Name), append(exps, p.Expiration)
	}
	// In file order, whether usable or not; expirations as one writes them.
	if want := []string{"zeta", "broken", "alpha"}; !slices.Equal(names, want) {
		t.Errorf("providers %v, want %v", names, want)
	}
	if want := []string{"1h30m", "", "oidc"}; !slices.Equal(exps, want) {
		t.Errorf("expirations %q, want %q", exps, want)
	}
	if b := l.Providers[1].Broken; !strings.Contains(b, `"3d" is neither`) || l.Providers[0].Broken != "" {
		t.Errorf("broken = %q", b)
	}
	if len(l.Rules) != 2 || l.Rules[0].Line != 16 || l.Rules[0].File != "t.yaml" {
		t.Fatalf("rules %+v", l.Rules)
	}
	ids := l.Rules[0].Identities
	if ids[0].Text != "a@example.com" || ids[1].Text != "claim:dept=eng" || ids[1].ClaimName != "dept" || ids[1].Line != 18 {
		t.Errorf("identities %+v", ids)
	}
	if !slices.Equal(l.Rules[0].RequireAMR, []string{"mfa"}) {
		t.Errorf("require %v", l.Rules[0].RequireAMR)
	}
	if len(l.Deny) != 1 || l.Deny[0].Text != "domain:evil.example" || l.Deny[0].Provider != "alpha" {
		t.Errorf("deny %+v", l.Deny)
	}

	// A principal keeps its rules, and every provider and deny entry.
	l = pol.List("deploy")
	if len(l.Rules) != 1 || l.Rules[0].Provider != "zeta" || len(l.Providers) != 3 || len(l.Deny) != 1 {
		t.Errorf("deploy: %+v", l)
	}
	if l = pol.List("nobody"); l.Rules == nil || len(l.Rules) != 0 {
		t.Errorf("nobody: rules %#v (an empty list, for JSON)", l.Rules)
	}
}
