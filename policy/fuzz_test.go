package policy

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"
)

// fuzzClaims are tokens with every shape a claim can take.
var fuzzClaims = []string{
	`{}`,
	`{"email": "alice@example.com", "email_verified": true, "sub": "248289761001", "groups": ["ssh-admins", 1, null], "amr": ["mfa"]}`,
	`{"email": "a@b@example.com", "email_verified": "true", "groups": "ssh-admins", "amr": "mfa", "realm_access": {"roles": ["admin", true, 3.5, {"x": 1}]}}`,
	`{"email": ["x"], "sub": 12, "groups": {"a": "b"}, "realm_access": [1, 2], "a": {"b": {"c": null}}, "true": true, "1e400": 1e300}`,
	`{"sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app", "repository_owner_id": "1234", "ref": "refs/heads/main", "project_path": "acme/app", "namespace_id": 1234, "ref_protected": "true", "environment": ["x"]}`,
}

// fuzzTokens decodes fuzzClaims.
func fuzzTokens(f *testing.F) []Claims {
	var tokens []Claims
	for _, js := range fuzzClaims {
		var c Claims
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			f.Fatal(err)
		}
		tokens = append(tokens, c)
	}
	return tokens
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{ciHead + "  - {principals: [d], provider: gha, identities: [{repository: acme/app, repository_owner_id: 1234, ref: refs/heads/main}]}\n  - {principals: [d], provider: gl, identities: [{project_path: acme/app, namespace_id: 1234, ref_protected: true}]}\n",
		fullPolicy, evalPolicy, head + okRule, head, "version: 1\n", "version: 1\nx: &a [*a]\n", "{version: 1, deny: [{sub: x}]}",
		head + "rules:\n  - {principals_from: groups, principals_allowed: ['db-*', root], provider: corp, identities: [{sub: s}], options: [restrict, 'command=\"x\"']}\n",
		"version: 1\nchain: {command: /usr/bin/x %u, timeout: 2s}\n"} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("testdata/add/input.yaml"); err == nil {
		f.Add(data)
	}
	tokens := fuzzTokens(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := Parse("f.yaml", data)
		if err != nil {
			return
		}
		providers := []string{""}
		for n := range pol.Providers {
			providers = append(providers, n)
		}
		for n := range pol.Broken {
			providers = append(providers, n)
		}
		principals := []string{"root", "-x"}
		for _, r := range pol.Rules {
			for _, p := range r.Principals {
				if !ValidPrincipal(p) {
					t.Fatalf("invalid principal %q loaded", p)
				}
			}
			for _, id := range r.Identities {
				if msg := checkIdentity(id); msg != "" {
					t.Fatalf("identity %+v loaded: %s", id, msg)
				}
			}
			principals = append(principals, r.Principals...)
		}
		for _, prov := range providers {
			for _, principal := range principals {
				for _, c := range tokens {
					d := pol.Evaluate(principal, prov, c)
					if !d.Allowed {
						continue
					}
					if d.Rule == nil || d.Rule.Provider != prov || !slices.Contains(d.Rule.Principals, principal) || pol.Providers[prov] == nil {
						t.Fatalf("allowed %s via %s by %+v", principal, prov, d.Rule)
					}
				}
			}
		}
	})
}

func FuzzParseIdentityArg(f *testing.F) {
	for _, s := range []string{"repository:a/b,repository_owner_id=1,ref=refs/heads/main", "project_path:a/b/c,namespace_id=2,ref_protected=true", "alice@example.com", "email:a:b@c.d", "domain:example.com", "sub:123", "group:g", "claim:a.b=c=d", "claim:iss=x", "domain:.x", "sub: x", ""} {
		f.Add(s)
	}
	base := []byte(head)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentityArg(s)
		if err != nil {
			return
		}
		back, err := ParseIdentityArg(id.String())
		if err != nil || !reflect.DeepEqual(back, id) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, id, id.String(), back, err)
		}
		// Whatever ParseIdentityArg accepts, Add can write and Parse reads back.
		prov, src := "corp", base
		if isCIKind(id.Kind) {
			// A CI identity goes into a rule for a CI provider of its kind, pinned to its owner.
			prov, src = "ci", []byte(ciFuzzHead(id.Kind))
			if !id.hasCondition(ownerPin[id.Kind]) {
				return
			}
		}
		out, err := insert(src, -1, "root", id, prov)
		if err != nil {
			t.Fatalf("insert %+v: %v", id, err)
		}
		pol, err := Parse("f.yaml", out)
		if err != nil {
			t.Fatalf("%+v written as\n%s\ndoes not parse: %v", id, out, err)
		}
		got := pol.Rules[len(pol.Rules)-1].Identities[0]
		got.Pos = Position{}
		if !reflect.DeepEqual(got, id) {
			t.Fatalf("%+v written as\n%s\nreads back as %+v", id, out, got)
		}
	})
}
