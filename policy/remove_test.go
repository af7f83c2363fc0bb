package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemove(t *testing.T) {
	tests := []struct {
		name, principal, identity, provider string
		message                             string // %P is the file
		gone, kept                          []string
	}{
		{
			name: "from a rule with others", principal: "deploy", identity: "group:ops", provider: "corp",
			message: "Removed group:ops from rule at %P:28",
			gone:    []string{"group: ops", "# ops team"},
			kept:    []string{"- sub: \"248289761001\"", "# deploy account", "# end of deploy identities"},
		},
		{
			name: "last identity deletes the rule", principal: "root", identity: "ALICE@example.com", provider: "corp",
			message: "Removed ALICE@example.com as root: deleted the rule that was at %P:20, it had no other identities",
			gone:    []string{"principals: [root]", "# admins, with MFA", "# the on-call engineer", "amr: [mfa]"},
			kept:    []string{"# who may log in", "principals: [deploy]", "# left the company"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := editCopy(t, 0o640)
			res, err := Remove(path, tt.principal, mustIdentity(t, tt.identity), tt.provider)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(tt.message, "%P", path); res.Message != want {
				t.Errorf("message = %q, want %q", res.Message, want)
			}
			got, _ := os.ReadFile(path)
			for _, s := range tt.gone {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("%q is still there:\n%s", s, got)
				}
			}
			for _, s := range tt.kept {
				if !bytes.Contains(got, []byte(s)) {
					t.Errorf("%q was lost:\n%s", s, got)
				}
			}
			pol := mustParse(t, string(got))
			id := mustIdentity(t, tt.identity)
			c := Claims{"email": "alice@example.com", "email_verified": true, "groups": []any{"ops"}, "amr": []any{"mfa"}}
			if d := pol.Evaluate(tt.principal, tt.provider, c); d.Allowed {
				t.Errorf("%s still allowed: %+v", id, d)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("mode not kept: %v %v", fi, err)
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

// Removing the last rule removes the rules key: an empty list does not load.
func TestRemoveLastRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	writeFile(t, path, head+"# the rules\nrules:\n  - principals: [root]\n    provider: corp\n    identities:\n      - sub: x # only one\n# the end\n", 0o644)
	if _, err := Remove(path, "root", mustIdentity(t, "sub:x"), "corp"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := head + "\n# the end\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// Every rule of the provider that lists the principal and the identity
// loses it; other principals and providers are left alone.
func TestRemoveEveryRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	src := head + `  other:
    issuer: https://other.example.com
    client_ids: [opkssh]
rules:
  - principals: [root]
    provider: corp
    identities: [{sub: x}, {sub: y}]
  - principals: [root]
    provider: corp
    identities: [{sub: x}]
    require: {amr: [mfa]}
  - principals: [deploy]
    provider: corp
    identities: [{sub: x}]
  - principals: [root]
    provider: other
    identities: [{sub: x}]
`
	writeFile(t, path, src, 0o644)
	res, err := Remove(path, "root", mustIdentity(t, "sub:x"), "corp")
	if err != nil {
		t.Fatal(err)
	}
	want := "Removed sub:x from rule at " + path + ":10\n" +
		"Removed sub:x as root: deleted the rule that was at " + path + ":13, it had no other identities"
	if res.Message != want {
		t.Errorf("message = %q, want %q", res.Message, want)
	}
	got, _ := os.ReadFile(path)
	pol := mustParse(t, string(got))
	if len(pol.Rules) != 3 {
		t.Fatalf("%d rules left, want 3:\n%s", len(pol.Rules), got)
	}
	for _, tc := range []struct {
		principal, provider string
		allowed             bool
	}{{"root", "corp", false}, {"deploy", "corp", true}, {"root", "other", true}} {
		if d := pol.Evaluate(tc.principal, tc.provider, Claims{"sub": "x", "amr": []any{"mfa"}}); d.Allowed != tc.allowed {
			t.Errorf("%s/%s: allowed = %v", tc.principal, tc.provider, d.Allowed)
		}
	}
	if d := pol.Evaluate("root", "corp", Claims{"sub": "y"}); !d.Allowed {
		t.Error("sub y lost")
	}
}

func TestRemoveErrors(t *testing.T) {
	tests := []struct {
		name, principal, identity, provider string
		is                                  error
		want                                []string // %P is the file
	}{
		{"not listed", "deploy", "bob@example.com", "corp", ErrNotListed,
			[]string{`bob@example.com is not listed for deploy with provider "corp" in %P; nothing was changed`}},
		{"listed elsewhere", "deploy", "alice@example.com", "corp", ErrNotListed,
			[]string{`alice@example.com is not listed for deploy`, `note: rule at %P:20 lists it for [root] with provider "corp"`}},
		{"other provider", "deploy", "group:ops", "ci", ErrNotListed,
			[]string{`note: rule at %P:28 lists it for [deploy] with provider "corp"`}},
		{"unknown provider", "deploy", "group:ops", "gitlab", nil,
			[]string{`unknown provider "gitlab" in %P (known: ci, corp)`}},
		{"bad principal", "-x", "group:ops", "corp", nil, []string{`"-x" is not a valid user name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := editCopy(t, 0o644)
			before, _ := os.ReadFile(path)
			_, err := Remove(path, tt.principal, mustIdentity(t, tt.identity), tt.provider)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if w = strings.ReplaceAll(w, "%P", path); !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant %q", err, w)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("file changed")
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

// A rule that lists other principals is not edited, nor is any other rule.
func TestRemoveSharedRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	src := head + `rules:
  - principals: [root]
    provider: corp
    identities: [{sub: x}, {sub: y}]
  - principals: [root, deploy]
    provider: corp
    identities: [{sub: x}]
`
	writeFile(t, path, src, 0o644)
	_, err := Remove(path, "root", mustIdentity(t, "sub:x"), "corp")
	if !errors.Is(err, ErrSharedRule) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"nothing was changed", "rule at " + path + ":10 lists principals [root, deploy], and removing sub:x from it would also stop it logging in as deploy", "Edit " + path + " by hand"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %v\nwant %q", err, w)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != src {
		t.Error("file changed")
	}
}

func TestRemoveInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	src := head + "rules:\n  - principals: [root]\n    provider: corp\n    identities: [{emial: x}]\n"
	writeFile(t, path, src, 0o644)
	_, err := Remove(path, "root", mustIdentity(t, "sub:x"), "corp")
	if err == nil || !strings.Contains(err.Error(), "fix it before removing") || !strings.Contains(err.Error(), path+":9:") {
		t.Errorf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != src {
		t.Error("file changed")
	}
}

func TestRemoveMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	_, err := Remove(path, "root", mustIdentity(t, "sub:x"), "corp")
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(path + ".lock"); err == nil {
		t.Error("lock file created")
	}
}

// The message says when another rule still lets the identity in.
func TestRemoveStillAllowedNote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	src := head + `rules:
  - principals: [root]
    provider: corp
    identities: [{email: alice@example.com}]
  - principals: [root]
    provider: corp
    identities: [{email_domain: example.com}]
`
	writeFile(t, path, src, 0o644)
	res, err := Remove(path, "root", mustIdentity(t, "alice@example.com"), "corp")
	if err != nil {
		t.Fatal(err)
	}
	want := "note: alice@example.com can still log in as root: allowed by rule at " + path + ":7: domain:example.com"
	if !strings.Contains(res.Message, want) {
		t.Errorf("message = %q\nwant %q", res.Message, want)
	}
}
