package policy

import (
	"fmt"
	"strings"
	"testing"
)

// A policy that does not load reports the errors of its provider blocks and of its unusable rules
// too, in the same pass.
func TestErrorsIncludeBrokenProviders(t *testing.T) {
	src := `version: 1
providers:
  bad:
    issuer: https://a.example
    client_ids: [x]
    expiration: 1d
  good:
    issuer: https://good.example
    client_ids: [g]
rules:
  - principals: [root]
    provider: good
    identities: [{emial: a@b.c}]
  - principals: [deploy]
    provider: good
    identities: [{email: a@b.c}]
    options: ['comand="x"']
`
	_, err := Parse("t.yaml", []byte(src))
	msg := fmt.Sprint(err)
	for _, want := range []string{`t.yaml:13: rules[0].identities[0]: unknown key "emial"`, `t.yaml:6: providers.bad.expiration: "1d" is neither`, `t.yaml:14: rule is unusable: `, `unknown option "comand"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestWarnDuplicateRules(t *testing.T) {
	src := `version: 1
providers:
  p:
    issuer: https://a.example
    client_ids: [x]
rules:
  - principals: [root, admin]
    provider: p
    identities: [{email: a@b.c}, {group: ops}]
  - principals: [admin, root]
    provider: p
    identities: [{group: ops}, {email: a@b.c}]
  - principals: [root, admin]
    provider: p
    identities: [{email: a@b.c}, {group: ops}]
    require: {amr: [mfa]}
  - principals: [root]
    provider: p
    identities: [{email: a@b.c}, {group: ops}]
`
	pol, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w := pol.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "t.yaml:10: this rule repeats the one at t.yaml:7 ") {
		t.Fatalf("warnings: %q", w)
	}
}
