package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fromHead = "version: 1\nproviders:\n  corp:\n    issuer: https://sso.example.com\n    client_ids: [x]\n" +
	"  multi:\n    issuer: https://login.microsoftonline.com/{tenantid}/v2.0\n    tenants: [t1]\n    client_ids: [x]\nrules:\n"

func TestPrincipalsFromParseErrors(t *testing.T) {
	for _, c := range []struct{ rule, want string }{
		{"  - {principals: [a], principals_from: groups, principals_allowed: [a], provider: corp, identities: [{sub: s}]}", "has both principals and principals_from"},
		{"  - {principals_from: groups, provider: corp, identities: [{sub: s}]}", "principals_from needs principals_allowed"},
		{"  - {principals: [a], principals_allowed: [a], provider: corp, identities: [{sub: s}]}", "only used with principals_from"},
		{"  - {principals_from: groups, principals_allowed: ['*'], provider: corp, identities: [{sub: s}]}", "would let a claim value name any account"},
		{"  - {principals_from: groups, principals_allowed: ['a[b'], provider: corp, identities: [{sub: s}]}", "not a valid glob"},
		{"  - {principals_from: groups, principals_allowed: ['a/b'], provider: corp, identities: [{sub: s}]}", "which no user name contains"},
		{"  - {principals_from: email, principals_allowed: [a], provider: corp, identities: [{sub: s}]}", "use principals_from: email_local_part"},
		{"  - {principals_from: aud, principals_allowed: [a], provider: corp, identities: [{sub: s}]}", "describes the token"},
		{"  - {principals_from: groups, principals_allowed: [a], provider: corp}", "missing identities"},
	} {
		_, err := Parse("t.yaml", []byte(fromHead+c.rule+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.rule, err, c.want)
		}
	}
}

func TestPrincipalsFromEvaluate(t *testing.T) {
	pol := mustParse(t, fromHead+
		"  - {principals_from: groups, principals_allowed: [deploy, 'team-*', root], provider: corp, identities: [{email_domain: example.com}]}\n"+
		"  - {principals_from: https://example.com/roles, principals_allowed: ['db?'], provider: corp, identities: [{sub: s1}]}\n"+
		"  - {principals_from: realm.roles, principals_allowed: ['r*'], provider: corp, identities: [{sub: s2}]}\n"+
		"  - {principals_from: email_local_part, principals_allowed: ['a*'], provider: corp, identities: [{sub: s3}]}\n"+
		"  - {principals_from: preferred_username, principals_allowed: ['p*'], provider: multi, identities: [{sub: s4}]}\n")
	tok := func(extra string) Claims {
		return claims(t, `{"sub": "s0", "email": "x@example.com", "email_verified": true`+extra+`}`)
	}
	for _, c := range []struct {
		name, principal string
		c               Claims
		reason, explain string
	}{
		{"list value", "deploy", tok(`, "groups": ["ops", "deploy"]`), ReasonAllowed, `groups value "deploy" matches principals_allowed glob "deploy"`},
		{"glob", "team-a", tok(`, "groups": ["team-a"]`), ReasonAllowed, `matches principals_allowed glob "team-*"`},
		{"string claim", "team-b", tok(`, "groups": "team-b"`), ReasonAllowed, ""},
		{"literal root", "root", tok(`, "groups": ["root"]`), ReasonAllowed, `glob "root"`},
		{"not in claim", "deploy", tok(`, "groups": ["ops"]`), ReasonNoClaimPrincipal, `groups has no value "deploy"`},
		{"glob does not allow", "ops", tok(`, "groups": ["ops"]`), ReasonNoRule, ""},
		{"identity fails", "deploy", claims(t, `{"sub": "s0", "email": "x@other.org", "email_verified": true, "groups": ["deploy"]}`), ReasonNoMatchingIdentity, ""},
		{"numeric name", "team-1", tok(`, "groups": ["team-1"]`), ReasonAllowed, ""},
		{"namespaced", "db1", claims(t, `{"sub": "s1", "https://example.com/roles": ["db1"]}`), ReasonAllowed, ""},
		{"nested", "reader", claims(t, `{"sub": "s2", "realm": {"roles": ["reader"]}}`), ReasonAllowed, ""},
		{"local part", "alice", claims(t, `{"sub": "s3", "email": "alice@example.com", "email_verified": true}`), ReasonAllowed, `email_local_part value "alice"`},
		{"local part unverified", "alice", claims(t, `{"sub": "s3", "email": "alice@example.com", "email_verified": "true"}`), ReasonNoClaimPrincipal, "needs a verified email"},
		{"preferred_username multi-tenant", "pat", claims(t, `{"sub": "s4", "preferred_username": "pat", "tid": "t1"}`), ReasonRuleBroken, "needs a provider with one fixed issuer"},
	} {
		prov := "corp"
		if c.name == "preferred_username multi-tenant" {
			prov = "multi"
		}
		d := pol.Evaluate(c.principal, prov, c.c)
		if d.Reason != c.reason || !strings.Contains(strings.Join(d.Explain, "\n"), c.explain) {
			t.Errorf("%s: %s %q, want %s %q", c.name, d.Reason, d.Explain, c.reason, c.explain)
		}
	}
	// root is never matched by a pattern.
	pol = mustParse(t, fromHead+"  - {principals_from: groups, principals_allowed: ['r*', 'ro?t'], provider: corp, identities: [{sub: s}]}\n")
	if d := pol.Evaluate("root", "corp", claims(t, `{"sub": "s", "groups": ["root"]}`)); d.Allowed {
		t.Errorf("a glob let root in: %q", d.Explain)
	}
	// All-digit values are uids to many tools, never accounts.
	pol = mustParse(t, fromHead+"  - {principals_from: groups, principals_allowed: ['1*'], provider: corp, identities: [{sub: s}]}\n")
	if d := pol.Evaluate("1000", "corp", claims(t, `{"sub": "s", "groups": ["1000"]}`)); d.Allowed {
		t.Errorf("a numeric claim value became an account: %q", d.Explain)
	}
}

// TestSnapshotPrincipalsFrom checks that rules with principals_from give the same decisions from
// the snapshot, in policy order (so the first rule's options win), with literal globs sharded.
func TestSnapshotPrincipalsFrom(t *testing.T) {
	opts, cache := snapshotFixture(t)
	extra := "version: 1\nrules:\n" +
		"  - {principals_from: groups, principals_allowed: ['team-*'], provider: corp, identities: [{sub: g}], options: [no-pty]}\n" +
		"  - {principals_from: groups, principals_allowed: [deploy], provider: corp, identities: [{sub: g}], options: [restrict]}\n" +
		"  - {principals: [team-x], provider: corp, identities: [{sub: g}], options: ['command=\"/bin/true\"']}\n"
	if err := os.WriteFile(filepath.Join(opts.DropInDir, "20-groups.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	tok := Claims{"sub": "g", "groups": []any{"team-x", "deploy"}}
	full, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range []string{"team-x", "deploy", "user7", "nobody"} {
		want := full.Evaluate(pr, "corp", tok)
		LoadForPrincipal(opts, cache, pr) // builds the snapshot
		snap, err := LoadForPrincipal(opts, cache, pr)
		if err != nil {
			t.Fatal(err)
		}
		got := snap.Evaluate(pr, "corp", tok)
		if got.Allowed != want.Allowed || got.Reason != want.Reason || (got.Rule != nil) != (want.Rule != nil) ||
			got.Rule != nil && (got.Rule.Pos != want.Rule.Pos || strings.Join(got.Rule.Options, ",") != strings.Join(want.Rule.Options, ",")) {
			t.Errorf("%s: snapshot %+v, full %+v", pr, got, want)
		}
	}
	if d := full.Evaluate("team-x", "corp", tok); d.Rule == nil || d.Rule.Options[0] != "no-pty" {
		t.Errorf("the first rule in policy order should decide: %+v", d)
	}
}

// BenchmarkSnapshotPrincipalsFrom measures a lookup in a 100,000-rule policy, with only principals
// rules and with half of them principals_from rules: literal globs are sharded like principals,
// and only the rules with patterns are read on every lookup.
func BenchmarkSnapshotPrincipalsFrom(b *testing.B) {
	for _, c := range []struct {
		name      string
		principal string
		fromRules bool
	}{{"principals", "u98", false}, {"principals_from", "g99", true}} {
		b.Run(c.name, func(b *testing.B) {
			opts, cache := bigPolicy(b, c.fromRules)
			claims := Claims{"sub": "s" + c.principal[1:], "groups": []any{c.principal}}
			if _, err := LoadForPrincipal(opts, cache, c.principal); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, err := LoadForPrincipal(opts, cache, c.principal)
				if err != nil || !p.Evaluate(c.principal, "corp", claims).Allowed {
					b.Fatal("no allow", err)
				}
			}
		})
	}
}

func bigPolicy(b *testing.B, fromRules bool) (LoadOptions, string) {
	root := b.TempDir()
	os.Chmod(root, 0o755)
	etc := filepath.Join(root, "etc")
	os.MkdirAll(filepath.Join(etc, "policies.d"), 0o755)
	path := filepath.Join(etc, "policies.yaml")
	os.WriteFile(path, []byte("version: 1\nproviders:\n  corp: {issuer: https://sso.example.com, client_ids: [x]}\n"+
		"rules:\n  - {principals_from: groups, principals_allowed: ['team-*'], provider: corp, identities: [{sub: t}]}\n"), 0o644)
	for f := 0; f < 4; f++ {
		var sb strings.Builder
		sb.WriteString("version: 1\nrules:\n")
		for i := f * 25000; i < (f+1)*25000; i++ {
			if i%2 == 0 || !fromRules {
				fmt.Fprintf(&sb, "  - {principals: [%s%d], provider: corp, identities: [{sub: s%d}]}\n", map[bool]string{true: "u", false: "g"}[i%2 == 0], i, i)
			} else {
				fmt.Fprintf(&sb, "  - {principals_from: groups, principals_allowed: [g%d], provider: corp, identities: [{sub: s%d}]}\n", i, i)
			}
		}
		os.WriteFile(filepath.Join(etc, "policies.d", fmt.Sprintf("%d.yaml", f)), []byte(sb.String()), 0o644)
	}
	cache := filepath.Join(root, "cache")
	os.Mkdir(cache, 0o700)
	return LoadOptions{Path: path, DropInDir: filepath.Join(etc, "policies.d"), TrustedUIDs: []int{os.Getuid()}}, cache
}
