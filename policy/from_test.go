package policy

import (
	"net/netip"
	"strings"
	"testing"
)

const fromPolicy = `version: 1
providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
rules:
  - principals: [ops]
    provider: corp
    identities:
      - email: alice@example.com
    require:
      from: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]
`

func TestRequireFrom(t *testing.T) {
	p, err := Parse("p.yaml", []byte(fromPolicy))
	if err != nil {
		t.Fatal(err)
	}
	alice := Claims{"email": "alice@example.com", "email_verified": true}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "192.0.2.7": true, "2001:db8::1": true, "::ffff:10.9.9.9": true,
		"192.0.2.8": false, "11.0.0.1": false, "2001:db9::1": false, "": false,
	} {
		var a netip.Addr
		if addr != "" {
			a = netip.MustParseAddr(addr)
		}
		d := p.EvaluateFrom("ops", "corp", alice, a)
		if d.Allowed != want {
			t.Errorf("from %q: allowed=%v, want %v (%s %v)", addr, d.Allowed, want, d.Reason, d.Explain)
		}
		if !want && d.Reason != ReasonRequireFrom {
			t.Errorf("from %q: reason %s, want %s", addr, d.Reason, ReasonRequireFrom)
		}
	}
	if d := p.Evaluate("ops", "corp", alice); d.Allowed || !strings.Contains(strings.Join(d.Explain, " "), "%C") {
		t.Errorf("without an address: %+v", d)
	}
}

func TestRequireFromErrors(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", ""} {
		src := strings.Replace(fromPolicy, `[10.0.0.0/8, 192.0.2.7, "2001:db8::/32"]`, `["`+bad+`"]`, 1)
		_, err := Parse("p.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "p.yaml:12: rules[0].require.from") {
			t.Errorf("from %q: %v", bad, err)
		}
	}
	src := strings.Replace(fromPolicy, "      from: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\"]\n", "", 1)
	if _, err := Parse("p.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "rules[0].require") {
		t.Errorf("empty require: %v", err)
	}
}
