package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzAdd runs Add on arbitrary policy files with arbitrary arguments. Add must never panic; if
// it fails the file must be byte-identical to before; if it succeeds the file must still pass
// Parse, keep every comment line of the original and allow the identity.
func FuzzAdd(f *testing.F) {
	input, err := os.ReadFile("testdata/add/input.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][4]string{
		{string(input), "deploy", "bob@example.com", "corp"},
		{string(input), "root", "bob@example.com", "corp"},
		{string(input), "deploy", "claim:repository=org/app", "ci"},
		{string(input), "deploy", "group:ops", "corp"},
		{string(input), "-x", "bob@example.com", "corp"},
		{string(input), "deploy", "domain:com", "corp"},
		{string(input), "deploy", "bob@example.com", "nope"},
		{head, "root", "alice@example.com", "corp"},
		{"# only a comment\n" + head + "# trailing\n", "root", "sub:1", "corp"},
		{head + "rules: []\n", "root", "sub:1", "corp"},
		{head + okRule + "deny:\n  - sub: x\n", "root", "alice@example.com", "corp"},
		{"version: 1\n", "root", "alice@example.com", "corp"},
		{"{version: 1, providers: {corp: {issuer: 'https://a.example.com', client_ids: [x]}}}", "root", "sub:1", "corp"},
		{head + "rules:\n  - principals: [root] # one\n    provider: corp\n    identities: [{sub: a}] # flow\n", "root", "sub:b", "corp"},
		{head + "rules:\n  - principals: [root]\n    provider: corp\n    comment: |\n      # not a comment\n    identities:\n      - sub: a\n", "root", "sub:b", "corp"},
		{"", "root", "sub:1", "corp"},
	} {
		f.Add([]byte(s[0]), s[1], s[2], s[3])
	}
	// One directory per worker process: a fresh one per input would cost more than Add itself.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, principal, identity, provider string) {
		id, err := ParseIdentityArg(identity)
		if err != nil {
			// Add must also refuse what the command line parser would have refused.
			id = Identity{Kind: KindEmail, Value: identity}
		}
		path := filepath.Join(dir, "policies.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Add(path, principal, id, provider)
		after, readErr := os.ReadFile(path)
		if readErr != nil {
			t.Fatalf("policy file gone after Add (err %v): %v", err, readErr)
		}
		if err != nil || !res.Changed {
			if !bytes.Equal(after, data) {
				t.Fatalf("Add returned (%+v, %v) but changed the file:\n%s", res, err, after)
			}
			return
		}
		pol, err := Parse(path, after)
		if err != nil {
			t.Fatalf("Add wrote a policy that does not parse: %v\n%s", err, after)
		}
		if lost := lostComments(data, after); len(lost) > 0 {
			t.Fatalf("Add lost comment lines %q:\nbefore:\n%s\nafter:\n%s", lost, data, after)
		}
		if !slices.ContainsFunc(pol.Rules, func(r Rule) bool {
			return r.Provider == provider && slices.Contains(r.Principals, principal) && len(r.RequireAMR) == 0 &&
				slices.ContainsFunc(r.Identities, id.sameAs)
		}) {
			t.Fatalf("Add reported %q but no rule lets %s in as %s:\n%s", res.Message, id, principal, after)
		}
	})
}

// lostComments returns the comment lines (first non-blank character '#') of before that after
// lacks. A line that is part of a scalar value (a block scalar may hold "# text") is not a comment.
func lostComments(before, after []byte) []string {
	var scalars []string
	var doc yaml.Node
	if yaml.Unmarshal(before, &doc) == nil {
		collectScalars(&doc, &scalars)
	}
	var lost []string
	for _, line := range strings.Split(string(before), "\n") {
		c := strings.TrimSpace(line)
		if !strings.HasPrefix(c, "#") || bytes.Contains(after, []byte(c)) {
			continue
		}
		if slices.ContainsFunc(scalars, func(s string) bool { return strings.Contains(s, c) }) {
			continue
		}
		lost = append(lost, c)
	}
	return lost
}

func collectScalars(n *yaml.Node, out *[]string) {
	if n.Kind == yaml.ScalarNode {
		*out = append(*out, n.Value)
	}
	for _, c := range n.Content {
		collectScalars(c, out)
	}
}
