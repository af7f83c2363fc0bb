package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzRemove runs Remove on arbitrary policy files with arbitrary arguments.
// Remove must never panic; if it fails the file must be byte-identical to
// before; if it succeeds the file must still pass Parse and no rule of the
// provider that lists the principal may list the identity any more, while
// every other rule keeps its principals and provider.
func FuzzRemove(f *testing.F) {
	input, err := os.ReadFile("testdata/add/input.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][4]string{
		{string(input), "root", "alice@example.com", "corp"},
		{string(input), "deploy", "group:ops", "corp"},
		{string(input), "deploy", "sub:248289761001", "corp"},
		{string(input), "deploy", "bob@example.com", "corp"},
		{string(input), "deploy", "group:ops", "nope"},
		{head + "rules:\n  - principals: [root, deploy]\n    provider: corp\n    identities: [{sub: a}]\n", "root", "sub:a", "corp"},
		{head + "rules:\n  - principals: [root, root]\n    provider: corp\n    identities: [{sub: a}, {sub: a}]\n", "root", "sub:a", "corp"},
		{head + "rules: [{principals: [root], provider: corp, identities: [{sub: a}]}] # flow\n# end\n", "root", "sub:a", "corp"},
		{"{version: 1, providers: {corp: {issuer: 'https://a.example.com', client_ids: [x]}}, rules: [{principals: [r], provider: corp, identities: [{sub: '1'}]}]}", "r", "sub:1", "corp"},
		{head + "rules:\n  - principals: [root]\n    provider: corp\n    comment: |\n      # not a comment\n    identities:\n      - sub: a\n      - sub: b\n", "root", "sub:b", "corp"},
		{"", "root", "sub:1", "corp"},
	} {
		f.Add([]byte(s[0]), s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, data []byte, principal, idArg, provider string) {
		id, err := ParseIdentityArg(idArg)
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "policies.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		before, beforeErr := Parse(path, data)
		_, err = Remove(path, principal, id, provider)
		after, readErr := os.ReadFile(path)
		if readErr != nil {
			t.Fatal(readErr)
		}
		if err != nil {
			if !bytes.Equal(after, data) {
				t.Fatalf("failed Remove (%v) changed the file:\n%s", err, after)
			}
			return
		}
		if beforeErr != nil {
			t.Fatalf("Remove succeeded on a policy that does not parse: %v", beforeErr)
		}
		pol, err := Parse(path, after)
		if err != nil {
			t.Fatalf("Remove wrote a policy that does not parse: %v\n%s", err, after)
		}
		var kept []string
		for _, r := range pol.Rules {
			if r.Provider == provider && slices.Contains(r.Principals, principal) && slices.ContainsFunc(r.Identities, id.sameAs) {
				t.Fatalf("rule at %s still lists %s:\n%s", r.Pos, id, after)
			}
			kept = append(kept, r.Provider+" "+strings.Join(r.Principals, ","))
		}
		var want []string
		for _, r := range before.Rules {
			if r.Provider == provider && slices.Contains(r.Principals, principal) &&
				!slices.ContainsFunc(r.Identities, func(x Identity) bool { return !x.sameAs(id) }) {
				continue // every identity removed: the rule is gone
			}
			want = append(want, r.Provider+" "+strings.Join(r.Principals, ","))
		}
		if !slices.Equal(kept, want) {
			t.Fatalf("rules kept %q, want %q:\n%s", kept, want, after)
		}
	})
}
