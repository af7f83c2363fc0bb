package policy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/add")

// editCopy copies testdata/add/input.yaml into a temporary directory.
func editCopy(t *testing.T, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile("testdata/add/input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policies.yaml")
	writeFile(t, path, string(data), mode)
	return path
}

func mustIdentity(t *testing.T, s string) Identity {
	t.Helper()
	id, err := ParseIdentityArg(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAddGolden(t *testing.T) {
	tests := []struct {
		golden, principal, identity, provider, message string
	}{
		// The deploy rule has a single principal and no require: append.
		{"append.golden", "deploy", "bob@example.com", "corp", "Added bob@example.com to rule at %P:28"},
		// The root rule has require: a new rule, so bob needs no MFA.
		{"newrule.golden", "root", "bob@example.com", "corp", "Added bob@example.com as root in a new rule at %P:35"},
		{"claim.golden", "deploy", "claim:repository=org/app", "ci", "Added claim:repository=org/app as deploy in a new rule at %P:35"},
		{"sub.golden", "deploy", "sub:0123", "corp", "Added sub:0123 to rule at %P:28"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			path := editCopy(t, 0o640)
			res, err := Add(path, tt.principal, mustIdentity(t, tt.identity), tt.provider)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(tt.message, "%P", path); !res.Changed || res.Message != want {
				t.Errorf("result = %+v, want message %q", res, want)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata/add", tt.golden)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -update to accept):\n%s", golden, got)
			}
			assertComments(t, got)
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("mode not kept: %v %v", fi.Mode(), err)
			}
			pol := mustParse(t, string(got))
			id := mustIdentity(t, tt.identity)
			c := Claims{"email": "bob@example.com", "email_verified": true, "sub": id.Value, id.ClaimName: id.Value}
			if d := pol.Evaluate(tt.principal, tt.provider, c); !d.Allowed {
				t.Errorf("the added identity is not allowed: %+v", d)
			}
		})
	}
}

// assertComments checks that every comment of the input survived.
func assertComments(t *testing.T, out []byte) {
	t.Helper()
	in, _ := os.ReadFile("testdata/add/input.yaml")
	for _, line := range strings.Split(string(in), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			if c := line[i:]; !bytes.Contains(out, []byte(c)) {
				t.Errorf("comment %q lost", c)
			}
		}
	}
}

func TestAddIdempotent(t *testing.T) {
	for _, tt := range []struct{ principal, identity, provider, rule string }{
		{"deploy", "group:ops", "corp", ":28"},
		{"deploy", "sub:248289761001", "corp", ":28"},
		{"deploy", "BOB@example.com", "corp", ":28"}, // after the first Add below
	} {
		path := editCopy(t, 0o644)
		if _, err := Add(path, "deploy", mustIdentity(t, "bob@example.com"), "corp"); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		res, err := Add(path, tt.principal, mustIdentity(t, tt.identity), tt.provider)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed || !strings.Contains(res.Message, "already allowed as deploy by rule at "+path+tt.rule) {
			t.Errorf("%s: %+v", tt.identity, res)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("%s: file changed", tt.identity)
		}
	}
}

// An identity allowed only under require is added again without it.
func TestAddNotIdempotentUnderRequire(t *testing.T) {
	path := editCopy(t, 0o644)
	res, err := Add(path, "root", mustIdentity(t, "alice@example.com"), "corp")
	if err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestAddErrors(t *testing.T) {
	tests := []struct {
		name, principal string
		id              Identity
		provider, want  string
	}{
		{"unknown provider", "root", Identity{Kind: KindEmail, Value: "bob@example.com"}, "gitlab", `unknown provider "gitlab" in %P (known: ci, corp)`},
		{"bad principal", "-x", Identity{Kind: KindEmail, Value: "bob@example.com"}, "corp", `"-x" is not a valid user name`},
		{"empty identity", "root", Identity{Kind: KindSub}, "corp", "value is empty"},
		{"bad domain", "root", Identity{Kind: KindEmailDomain, Value: "com"}, "corp", `"com" has no dot`},
		{"bad kind", "root", Identity{Kind: "mail", Value: "x"}, "corp", `unknown identity kind "mail"`},
		{"deny scope", "root", Identity{Kind: KindSub, Value: "x", Provider: "corp"}, "corp", "pass the provider separately"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := editCopy(t, 0o644)
			before, _ := os.ReadFile(path)
			_, err := Add(path, tt.principal, tt.id, tt.provider)
			if want := strings.ReplaceAll(tt.want, "%P", path); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q", err, want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("file changed")
			}
			assertNoTemp(t, filepath.Dir(path))
		})
	}
}

func TestAddInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	src := head + "rules:\n  - principals: [root]\n    provider: corp\n    identities: [{emial: x}]\n"
	writeFile(t, path, src, 0o644)
	_, err := Add(path, "root", mustIdentity(t, "bob@example.com"), "corp")
	if err == nil || !strings.Contains(err.Error(), "fix it before adding") || !strings.Contains(err.Error(), path+":9:") {
		t.Errorf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != src {
		t.Error("file changed")
	}
}

func TestAddMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	if _, err := Add(path, "root", mustIdentity(t, "bob@example.com"), "corp"); err == nil {
		t.Error("no error")
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("file created")
	}
}

func TestAddCreatesRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policies.yaml")
	writeFile(t, path, "# providers only\n"+head+"# trailing comment\n", 0o600)
	res, err := Add(path, "root", mustIdentity(t, "domain:example.com"), "corp")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := `# providers only
version: 1
providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
# trailing comment

rules:
  - principals: [root]
    provider: corp
    identities:
      - email_domain: example.com
`
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if res.Message != "Added domain:example.com as root in a new rule at "+path+":10" {
		t.Errorf("message = %q", res.Message)
	}
}

func TestAddNotes(t *testing.T) {
	path := editCopy(t, 0o644)
	res, err := Add(path, "deploy", mustIdentity(t, "mallory@example.com"), "corp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "note: deny entry at "+path+":38 still refuses mallory@example.com") {
		t.Errorf("message = %q", res.Message)
	}
}

func TestAddLockFile(t *testing.T) {
	path := editCopy(t, 0o644)
	if _, err := Add(path, "deploy", mustIdentity(t, "bob@example.com"), "corp"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path + ".lock")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v", fi, err)
	}
	assertNoTemp(t, filepath.Dir(path))
}

func TestAddConcurrent(t *testing.T) {
	path := editCopy(t, 0o644)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := Identity{Kind: KindEmail, Value: fmt.Sprintf("user%d@example.com", i)}
			if _, err := Add(path, "deploy", id, "corp"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	data, _ := os.ReadFile(path)
	pol := mustParse(t, string(data))
	for i := 0; i < n; i++ {
		c := Claims{"email": fmt.Sprintf("user%d@example.com", i), "email_verified": true}
		if d := pol.Evaluate("deploy", "corp", c); !d.Allowed {
			t.Errorf("user%d lost", i)
		}
	}
	if got := len(pol.Rules[1].Identities); got != 2+n {
		t.Errorf("deploy rule has %d identities, want %d", got, 2+n)
	}
	assertNoTemp(t, filepath.Dir(path))
}

// assertNoTemp checks that no temporary file was left behind.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "policies.yaml" && e.Name() != "policies.yaml.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
