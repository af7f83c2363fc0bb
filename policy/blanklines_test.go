package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const spaced = `# Company policy
version: 1

providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
    expiration: 24h

  google:
    issuer: https://accounts.google.com
    client_ids: ["x.apps.googleusercontent.com"]
    expiration: 24h


rules:
  # admins
  - principals: [root]
    provider: corp
    identities:
      - email: alice@example.com

  - principals: [deploy]
    provider: google
    identities:
      - sub: "1234"

deny:
  - email: mallory@example.com
`

// An administrator's blank lines survive add and remove: the file differs only by the edit.
func TestEditsKeepBlankLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(path, []byte(spaced), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Add(path, "root", mustIdentity(t, "bob@example.com"), "corp")
	if err != nil {
		t.Fatal(err)
	}
	added, _ := os.ReadFile(path)
	want := strings.Replace(spaced, "      - email: alice@example.com\n", "      - email: alice@example.com\n      - email: bob@example.com\n", 1)
	if string(added) != want {
		t.Fatalf("after add:\n%s\nwant:\n%s", added, want)
	}
	// Line numbers in messages are the file's own, blank lines counted.
	if !strings.HasSuffix(res.Message, "policies.yaml:18") {
		t.Errorf("add message %q, want the rule at line 18", res.Message)
	}
	if _, err := Remove(path, "root", mustIdentity(t, "bob@example.com"), "corp"); err != nil {
		t.Fatal(err)
	}
	if removed, _ := os.ReadFile(path); string(removed) != spaced {
		t.Fatalf("after remove:\n%s\nwant the original back", removed)
	}
}
