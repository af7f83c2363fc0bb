package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The sample the decision table below is worked out from. Rows marked
// "not converted" are reported by Import.
const (
	sampleProviders = `# issuer client_id expiration
https://accounts.google.com google-client 24h
https://login.microsoftonline.com/tenant/v2.0 azure-client 1week
https://sso.example.com/realms/main opkssh oidc_refreshed
https://gitlab.com gitlab-client 24h
`
	sampleAuthID = `# principal identity issuer
alice alice@example.com https://accounts.google.com
root alice@example.com https://accounts.google.com
root 104329384729384 https://accounts.google.com
dev oidc:groups:developers https://login.microsoftonline.com/tenant/v2.0
dev bob@microsoft.example https://login.microsoftonline.com/tenant/v2.0
dev oidc-match-end:email:@example.com https://sso.example.com/realms/main
ops oidc:"https://example.com/roles":ops https://sso.example.com/realms/main
ops oidc:sub:ops-robot https://sso.example.com/realms/main
ci repo:org/app:ref:refs/heads/main https://gitlab.com
ci repo:org/*:ref:refs/heads/* https://gitlab.com                            # not converted: a glob
guest oidc-match-end:email:example.org https://sso.example.com/realms/main   # not converted: no '@'
guest carol@example.net https://unknown.example.com                          # not converted: unknown issuer
`
)

const (
	issGoogle = "https://accounts.google.com"
	issAzure  = "https://login.microsoftonline.com/tenant/v2.0"
	issKC     = "https://sso.example.com/realms/main"
	issGitlab = "https://gitlab.com"
)

// decisionCases are tokens and the principals the previous tool lets them
// log in as, worked out by hand from its rules: a plain identity equals the
// email ignoring case (Unicode folding) or the sub exactly; email_verified
// is not checked; oidc:CLAIM:VALUE needs VALUE to be the claim's string or
// one of its list entries; oidc-match-end:email:S needs the lower-cased email
// to end with the lower-cased S; repo:GLOB is a path.Match glob on sub; the
// issuer must equal the row's exactly.
//
// lost lists the principals of old that the imported policy refuses, and
// why: a row reported as not converted, or one of the narrowings documented
// at Import. Nothing else may differ, and the imported policy never allows
// more than old.
var decisionCases = []struct {
	name   string
	iss    string
	claims string
	old    []string
	lost   []string
	why    string
}{
	{"google alice", issGoogle, `{"sub": "111", "email": "alice@example.com", "email_verified": true}`, []string{"alice", "root"}, nil, ""},
	{"google alice in capitals, unverified", issGoogle, `{"sub": "112", "email": "ALICE@Example.com", "email_verified": false}`, []string{"alice", "root"}, nil, ""},
	{"google alice, no email_verified", issGoogle, `{"sub": "113", "email": "alice@example.com"}`, []string{"alice", "root"}, nil, ""},
	{"google sub", issGoogle, `{"sub": "104329384729384", "email": "someone@gmail.com", "email_verified": true}`, []string{"root"}, nil, ""},
	{"google sub with one more digit", issGoogle, `{"sub": "1043293847293840"}`, nil, nil, ""},
	{"google bob", issGoogle, `{"sub": "bob", "email": "bob@example.com", "email_verified": true}`, nil, nil, ""},
	{"google alice's address as sub", issGoogle, `{"sub": "alice@example.com", "email": "x@gmail.com", "email_verified": true}`,
		[]string{"alice", "root"}, []string{"alice", "root"}, "an address is compared with email only, no longer with sub"},
	{"azure group", issAzure, `{"sub": "c1", "email": "carol@corp.example", "groups": ["staff", "developers"]}`, []string{"dev"}, nil, ""},
	{"azure group in other case", issAzure, `{"sub": "c2", "groups": ["Developers"]}`, nil, nil, ""},
	{"azure group as a single string", issAzure, `{"sub": "c3", "groups": "developers"}`, []string{"dev"}, nil, ""},
	{"azure bob, no email_verified", issAzure, `{"sub": "b1", "email": "bob@microsoft.example"}`, []string{"dev"}, nil, ""},
	{"azure alice", issAzure, `{"sub": "a1", "email": "alice@example.com", "email_verified": true}`, nil, nil, ""},
	{"keycloak domain", issKC, `{"sub": "d1", "email": "dan@example.com", "email_verified": true}`, []string{"dev"}, nil, ""},
	{"keycloak domain in capitals, unverified", issKC, `{"sub": "d2", "email": "dan@EXAMPLE.COM", "email_verified": false}`, []string{"dev"}, nil, ""},
	{"keycloak subdomain", issKC, `{"sub": "d3", "email": "dan@sub.example.com", "email_verified": true}`, nil, nil, ""},
	{"keycloak lookalike domain", issKC, `{"sub": "d4", "email": "dan@evilexample.com", "email_verified": true}`, nil, nil, ""},
	{"keycloak suffix without @", issKC, `{"sub": "e1", "email": "eve@example.org", "email_verified": true}`,
		[]string{"guest"}, []string{"guest"}, "oidc-match-end:email:example.org was not converted"},
	{"keycloak lookalike of the suffix", issKC, `{"sub": "e2", "email": "eve@notexample.org", "email_verified": true}`,
		[]string{"guest"}, []string{"guest"}, "oidc-match-end:email:example.org was not converted: this is why"},
	{"keycloak role list", issKC, `{"sub": "r1", "https://example.com/roles": ["ops", "x"]}`, []string{"ops"}, nil, ""},
	{"keycloak role string", issKC, `{"sub": "r2", "https://example.com/roles": "ops"}`, []string{"ops"}, nil, ""},
	{"keycloak other role", issKC, `{"sub": "r3", "https://example.com/roles": ["opsx"]}`, nil, nil, ""},
	{"keycloak oidc:sub", issKC, `{"sub": "ops-robot"}`, []string{"ops"}, nil, ""},
	{"keycloak sub in other case", issKC, `{"sub": "OPS-ROBOT"}`, nil, nil, ""},
	{"gitlab exact repo", issGitlab, `{"sub": "repo:org/app:ref:refs/heads/main"}`, []string{"ci"}, nil, ""},
	{"gitlab repo of the glob", issGitlab, `{"sub": "repo:org/lib:ref:refs/heads/dev"}`,
		[]string{"ci"}, []string{"ci"}, "repo:org/*:ref:refs/heads/* was not converted"},
	{"unknown issuer", "https://unknown.example.com", `{"sub": "c", "email": "carol@example.net", "email_verified": true}`, nil, nil, ""},
	{"issuer with a trailing slash", issGoogle + "/", `{"sub": "111", "email": "alice@example.com", "email_verified": true}`, nil, nil, ""},
}

var samplePrincipals = []string{"alice", "root", "dev", "ops", "ci", "guest"}

// writeSample writes the previous tool's two files into a directory.
func writeSample(t *testing.T, providers, authID string) ImportOptions {
	t.Helper()
	dir := t.TempDir()
	opts := ImportOptions{ProvidersFile: filepath.Join(dir, "providers"), AuthIDFile: filepath.Join(dir, "auth_id")}
	writeFile(t, opts.ProvidersFile, providers, 0o640)
	writeFile(t, opts.AuthIDFile, authID, 0o640)
	return opts
}

// TestImportKeepsDecisions is the decision-equivalence test: the imported
// policy decides every token of decisionCases as the previous tool did,
// but for the documented losses.
func TestImportKeepsDecisions(t *testing.T) {
	res, err := Import(writeSample(t, sampleProviders, sampleAuthID))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 3 {
		t.Errorf("skipped %d rows, want the 3 marked:\n%v", len(res.Skipped), res.Skipped)
	}
	pol := mustParse(t, string(res.YAML))
	for _, tc := range decisionCases {
		c := claimsNumber(t, tc.claims)
		for _, p := range samplePrincipals {
			if slices.Contains(tc.lost, p) && !slices.Contains(tc.old, p) {
				t.Fatalf("%s: %s is in lost but not in old", tc.name, p)
			}
			want := slices.Contains(tc.old, p) && !slices.Contains(tc.lost, p)
			got := false
			var explain []string
			if prov, ok := pol.ProviderByIssuer(tc.iss); ok {
				d := pol.Evaluate(p, prov.Name, c)
				got, explain = d.Allowed, d.Explain
			}
			if got != want {
				t.Errorf("%s as %s: imported policy allows = %v, previous tool (less documented losses) = %v\n%s\n%s",
					tc.name, p, got, want, strings.Join(explain, "\n"), res.YAML)
			}
		}
	}
}

// With RequireEmailVerified, email identities need email_verified: true.
func TestImportRequireEmailVerified(t *testing.T) {
	opts := writeSample(t, sampleProviders, sampleAuthID)
	opts.RequireEmailVerified = true
	res, err := Import(opts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(res.YAML, []byte("require_email_verified")) {
		t.Errorf("require_email_verified written:\n%s", res.YAML)
	}
	pol := mustParse(t, string(res.YAML))
	for _, tc := range []struct {
		iss, claims string
		principal   string
		allowed     bool
	}{
		{issGoogle, `{"email": "alice@example.com", "email_verified": true}`, "alice", true},
		{issGoogle, `{"email": "alice@example.com", "email_verified": false}`, "alice", false},
		{issAzure, `{"email": "bob@microsoft.example"}`, "dev", false},
		{issKC, `{"email": "dan@example.com"}`, "dev", false},
	} {
		prov, _ := pol.ProviderByIssuer(tc.iss)
		if d := pol.Evaluate(tc.principal, prov.Name, claims(t, tc.claims)); d.Allowed != tc.allowed {
			t.Errorf("%s %s as %s: %+v", tc.iss, tc.claims, tc.principal, d)
		}
	}
}

// TestImportGolden converts testdata/import, which has a row of each kind
// the converter refuses, and compares with want.yaml (go test -update to
// rewrite it).
func TestImportGolden(t *testing.T) {
	opts := ImportOptions{
		ProvidersFile: "testdata/import/providers",
		AuthIDFile:    "testdata/import/auth_id",
		Now:           time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	res, err := Import(opts)
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/import/want.yaml"
	if *update {
		if err := os.WriteFile(golden, res.YAML, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.YAML, want) {
		t.Errorf("%s differs (go test -update to accept):\n%s", golden, res.YAML)
	}
	if res.Providers != 5 || res.Rules != 7 || res.Identities != 10 {
		t.Errorf("counts: %d providers, %d rules, %d identities", res.Providers, res.Rules, res.Identities)
	}
	var skipped []string
	for _, s := range res.Skipped {
		skipped = append(skipped, s.Pos.String())
	}
	wantSkipped := []string{
		"testdata/import/providers:9", "testdata/import/providers:10", "testdata/import/providers:12",
	}
	for l := 12; l <= 23; l++ {
		wantSkipped = append(wantSkipped, "testdata/import/auth_id:"+strconv.Itoa(l))
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(skipped, "\n"), strings.Join(wantSkipped, "\n"))
	}
	if len(res.Notes) != 2 {
		t.Errorf("notes: %v", res.Notes)
	}
	for _, s := range res.Skipped {
		if !strings.Contains(string(res.YAML), "#   "+s.String()) {
			t.Errorf("header does not list %s", s)
		}
	}
}

func TestConvertIdentity(t *testing.T) {
	tests := []struct {
		in, want, problem string
	}{
		{"alice@example.com", "alice@example.com", ""},
		{"248289761001", "sub:248289761001", ""},
		{"OIDC:groups:x", "sub:OIDC:groups:x", ""}, // prefixes are case-sensitive, as before
		{"oidc:groups:ssh-users", "group:ssh-users", ""},
		{"oidc:sub:abc", "sub:abc", ""},
		{`oidc:"https://acme.com/groups":ssh-users`, "claim:https://acme.com/groups=ssh-users", ""},
		{"oidc:department:eng", "claim:department=eng", ""},
		{"oidc-match-end:email:@Example.com", "domain:Example.com", ""},
		{"repo:org/app:ref:refs/heads/main", "sub:repo:org/app:ref:refs/heads/main", ""},

		{"oidc:email:alice@example.com", "", "write the address alone (alice@example.com)"},
		{"oidc:realm_access.roles:admin", "", "also follows the dots into nested claims"},
		{"oidc:groups:a:b", "", `matched only the part after the last ':' ("b")`},
		{"oidc:groups", "", "not of the form oidc:CLAIM:VALUE"},
		{"oidc:", "", "not of the form oidc:CLAIM:VALUE"},
		{"oidc::x", "", "not of the form oidc:CLAIM:VALUE"},
		{`oidc:groups:"a"`, "", "quotes"},
		{"oidc-match-end:email:example.com", "", `ends in "example.com", including lookalike domains`},
		{"oidc-match-end:email:.example.com", "", "lookalike"},
		{"oidc-match-end:email:@com", "", "lookalike"},
		{"oidc-match-end:email:", "", "lookalike"},
		{"oidc-match-end:sub:x", "", "only oidc-match-end:email: is understood"},
		{"repo:org/*", "", "glob pattern"},
		{`repo:org/a\b`, "", "glob pattern"},
	}
	for _, tt := range tests {
		id, problem := convertIdentity(tt.in)
		switch {
		case tt.problem != "" && !strings.Contains(problem, tt.problem):
			t.Errorf("%s: problem = %q, want %q", tt.in, problem, tt.problem)
		case tt.problem == "" && (problem != "" || id.String() != tt.want):
			t.Errorf("%s: %s %q, want %s", tt.in, id, problem, tt.want)
		}
	}
}

func TestSplitFields(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"  a\tb   c ", []string{"a", "b", "c"}},
		{`a\ b c`, []string{"a b", "c"}},
		{`a\\ b`, []string{`a\`, "b"}},
		{`\ `, []string{" "}},
		{"", nil},
		{"a\r", []string{"a"}},
	}
	for _, tt := range tests {
		if got := splitFields(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitFields(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProviderNames(t *testing.T) {
	im := &importer{taken: map[string]bool{}}
	for _, tt := range []struct{ iss, want string }{
		{"https://accounts.google.com", "google"},
		{"https://login.microsoftonline.com/a/v2.0", "azure"},
		{"https://login.microsoftonline.com/b/v2.0", "azure-2"},
		{"https://SSO.Example.com:8443/realms/x", "sso-example-com"},
		{"https://sso.example.com/realms/y", "sso-example-com-2"},
		{"http://127.0.0.1:8888", "127-0-0-1"},
		{"http://[::1]:8888", "1"},
		{"https://_x_.example", "x_-example"},
		{"https://-.example", "example"},
	} {
		got := im.providerName(tt.iss)
		if got != tt.want || !validProviderName(got) {
			t.Errorf("providerName(%s) = %q, want %q", tt.iss, got, tt.want)
		}
	}
}

func TestImportNothing(t *testing.T) {
	_, err := Import(writeSample(t, "# nothing yet\nhttps://x.example.com client 3days\n", ""))
	if !errors.Is(err, ErrNothingToImport) {
		t.Errorf("err = %v", err)
	}
	_, err = Import(ImportOptions{ProvidersFile: filepath.Join(t.TempDir(), "none"), AuthIDFile: "testdata/import/auth_id"})
	if err == nil || !strings.Contains(err.Error(), "none: no such file") {
		t.Errorf("err = %v", err)
	}
}

// A providers file alone gives providers and no rules, and still loads.
func TestImportNoAuthIDRows(t *testing.T) {
	res, err := Import(writeSample(t, sampleProviders, "# empty\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol := mustParse(t, string(res.YAML))
	if len(pol.Providers) != 4 || len(pol.Rules) != 0 || res.Rules != 0 {
		t.Errorf("%d providers, %d rules", len(pol.Providers), len(pol.Rules))
	}
}

func TestWriteNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policies.yaml")
	if err := WriteNewFile(path, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	err := WriteNewFile(path, []byte("two\n"))
	if err == nil || !strings.Contains(err.Error(), "already exists and is never overwritten") {
		t.Errorf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one\n" {
		t.Errorf("file = %q", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}
