package policy

import (
	"slices"
	"testing"
)

// FuzzParseUserFile feeds ParseUserFile what a local user could write in their file, and checks
// that whatever it accepts names one person through an allowed provider and can grant only the
// principal it is evaluated for.
func FuzzParseUserFile(f *testing.F) {
	for _, s := range []string{goodUserFile, bobFileForFuzz, "version: 1\nidentities: [{group: g, provider: corp}]\n", "version: 1\nx: &a [*a]\n", "{version: 1, identities: [{sub: x, provider: ci}]}"} {
		f.Add([]byte(s))
	}
	pol := mustParse(f, head+"  ci:\n    issuer: https://ci.example.com\n    client_ids: [ci]\n"+okRule+"user_policies:\n  enabled: true\n  providers: [corp]\n")
	tokens := fuzzTokens(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		uf, err := ParseUserFile("u.yaml", data, pol.UserPolicies.Providers)
		if err != nil {
			return
		}
		for _, id := range uf.Identities {
			if !slices.Contains(userIdentityKinds, id.Kind) || id.Provider != "corp" || checkIdentity(id) != "" {
				t.Fatalf("identity %+v loaded", id)
			}
		}
		for _, prov := range []string{"corp", "ci", "nope"} {
			for _, c := range tokens {
				d := pol.EvaluateUserFile(uf, "carol", prov, c)
				if d.Allowed && (prov != "corp" || d.Rule == nil || !slices.Equal(d.Rule.Principals, []string{"carol"})) {
					t.Fatalf("allowed via %s by %+v", prov, d.Rule)
				}
			}
		}
	})
}

const bobFileForFuzz = "version: 1\nidentities:\n  - {email: alice@example.com, provider: corp}\n  - {sub: \"248289761001\", provider: corp}\n"
