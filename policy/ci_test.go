package policy

import (
	"strings"
	"testing"
)

const ciHead = `version: 1
providers:
  gha:
    kind: github-actions
  gl:
    kind: gitlab-ci
    issuer: https://gitlab.example.com
  fj:
    kind: forgejo-actions
    issuer: https://codeberg.org/api/actions
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
rules:
`

func TestCIProviders(t *testing.T) {
	pol := mustParse(t, ciHead+`  - principals: [deploy]
    provider: gha
    identities:
      - repository: acme/app
        repository_owner_id: 1234
        ref: refs/heads/main
        environment: production
`)
	gha := pol.Providers["gha"]
	if gha.Kind != ProviderGitHubActions || gha.Issuer != "https://token.actions.githubusercontent.com" || !gha.Expiration.UseTokenExp || len(gha.ClientIDs) != 0 {
		t.Fatalf("github provider: %+v", gha)
	}
	if pol.Providers["corp"].IsCI() || pol.Providers["corp"].Kind != "" {
		t.Fatal("a provider without kind is oidc")
	}
	id := pol.Rules[0].Identities[0]
	if id.Kind != KindRepository || id.Value != "acme/app" || len(id.Conditions) != 3 || id.Conditions[0] != (Condition{"repository_owner_id", "1234"}) {
		t.Fatalf("identity %+v", id)
	}
	if got := id.String(); got != "repository:acme/app,repository_owner_id=1234,ref=refs/heads/main,environment=production" {
		t.Fatalf("String %q", got)
	}
	job := `{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/app:environment:production","repository":"acme/app","repository_owner_id":"1234","ref":"refs/heads/main","environment":"production"}`
	if d := pol.Evaluate("deploy", "gha", claims(t, job)); !d.Allowed {
		t.Fatalf("job denied: %v", d.Explain)
	}
	for name, repl := range map[string][2]string{
		"another repository":         {`"repository":"acme/app"`, `"repository":"acme/other"`},
		"another owner, same name":   {`"repository_owner_id":"1234"`, `"repository_owner_id":"999"`},
		"repository differs in case": {`"repository":"acme/app"`, `"repository":"ACME/app"`},
		"no owner id":                {`"repository_owner_id":"1234",`, ``},
		"another ref":                {`"ref":"refs/heads/main"`, `"ref":"refs/heads/evil"`},
		"another environment":        {`"environment":"production"`, `"environment":"staging"`},
		"owner id as number":         {`"repository_owner_id":"1234"`, `"repository_owner_id":12345`},
	} {
		d := pol.Evaluate("deploy", "gha", claims(t, strings.Replace(job, repl[0], repl[1], 1)))
		if d.Allowed || d.Reason != ReasonNoMatchingIdentity {
			t.Errorf("%s: %+v", name, d)
		}
	}
	// The same job's token under another provider does not match the rule.
	if d := pol.Evaluate("deploy", "corp", claims(t, job)); d.Allowed {
		t.Error("rule for gha matched a corp token")
	}
}

func TestGitLabIdentity(t *testing.T) {
	pol := mustParse(t, ciHead+`  - principals: [deploy]
    provider: gl
    identities:
      - project_path: acme/infra/app
        namespace_id: "42"
        ref_protected: true
`)
	job := `{"iss":"https://gitlab.example.com","sub":"project_path:acme/infra/app:ref_type:branch:ref:main","project_path":"acme/infra/app","namespace_id":"42","ref_protected":"true"}`
	if d := pol.Evaluate("deploy", "gl", claims(t, job)); !d.Allowed {
		t.Fatalf("job denied: %v", d.Explain)
	}
	if d := pol.Evaluate("deploy", "gl", claims(t, strings.Replace(job, `"ref_protected":"true"`, `"ref_protected":"false"`, 1))); d.Allowed {
		t.Fatal("unprotected ref allowed")
	}
}

func TestCIPolicyErrors(t *testing.T) {
	rule := func(prov, ids string) string {
		return ciHead + "  - principals: [deploy]\n    provider: " + prov + "\n    identities:\n" + ids
	}
	tests := []struct{ name, src, want string }{
		{"owner glob", rule("gha", "      - {repository: '*/app', repository_owner_id: 1}\n"), "wildcards are not supported"},
		{"repo glob", rule("gha", "      - {repository: 'acme/*', repository_owner_id: 1}\n"), "wildcards are not supported"},
		{"no owner segment", rule("gha", "      - {repository: app, repository_owner_id: 1}\n"), "is not an OWNER/REPO"},
		{"three segments", rule("gha", "      - {repository: a/b/c, repository_owner_id: 1}\n"), "is not an OWNER/REPO"},
		{"dot segment", rule("gha", "      - {repository: ../app, repository_owner_id: 1}\n"), "empty or invalid segment"},
		{"unpinned github", rule("gha", "      - repository: acme/app\n"), "pin the owner with repository_owner_id"},
		{"unpinned gitlab", rule("gl", "      - project_path: acme/app\n"), "pin the owner with namespace_id"},
		{"email in CI rule", rule("gha", "      - email: alice@example.com\n"), "could match another tenant's jobs"},
		{"claim in CI rule", rule("gha", "      - claim: {name: repository_owner, value: acme}\n"), "could match another tenant's jobs"},
		{"sub in CI rule", rule("gha", "      - sub: 'repo:acme/app:ref:refs/heads/main'\n"), "could match another tenant's jobs"},
		{"project_path for github", rule("gha", "      - {project_path: acme/app, namespace_id: 1}\n"), "whose rules name jobs by repository"},
		{"repository for oidc", rule("corp", "      - {repository: acme/app, repository_owner_id: 1}\n"), "needs a CI provider"},
		{"gitlab condition on github", rule("gha", "      - {repository: acme/app, repository_owner_id: 1, ref_protected: true}\n"), "unknown key \"ref_protected\""},
		{"condition without kind", rule("gha", "      - {ref: main}\n"), "unknown key \"ref\""},
		{"owner id not numeric", rule("gha", "      - {repository: acme/app, repository_owner_id: acme}\n"), "is not a numeric ID"},
		{"ref glob", rule("gha", "      - {repository: acme/app, repository_owner_id: 1, ref: 'refs/heads/*'}\n"), "wildcards are not supported"},
		{"ref_protected not bool", rule("gl", "      - {project_path: a/b, namespace_id: 1, ref_protected: yes-ish}\n"), "expected true or false"},
		{"client_ids on CI", strings.Replace(ciHead, "    kind: github-actions\n", "    kind: github-actions\n    client_ids: [x]\n", 1) + "  - {principals: [a], provider: corp, identities: [{email: a@example.com}]}\n", "has no client_ids"},
		{"expiration on CI", strings.Replace(ciHead, "    kind: github-actions\n", "    kind: github-actions\n    expiration: 24h\n", 1) + "  - {principals: [a], provider: corp, identities: [{email: a@example.com}]}\n", "lasts as long as the job's token"},
		{"unknown kind", strings.Replace(ciHead, "kind: github-actions", "kind: jenkins", 1) + "  - {principals: [a], provider: corp, identities: [{email: a@example.com}]}\n", `"jenkins" is not a provider kind`},
		{"forgejo without issuer", strings.Replace(ciHead, "    issuer: https://codeberg.org/api/actions\n", "", 1) + "  - {principals: [a], provider: corp, identities: [{email: a@example.com}]}\n", "/api/actions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := Parse("t.yaml", []byte(tt.src))
			if err == nil {
				// Provider block errors disable the provider rather than the file.
				for _, e := range pol.Broken {
					err = e
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
		})
	}
}

func TestForgejoOwnerWarning(t *testing.T) {
	pol := mustParse(t, ciHead+"  - {principals: [deploy], provider: fj, identities: [{repository: acme/app}]}\n")
	w := pol.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "repository_owner_id") {
		t.Fatalf("warnings %q", w)
	}
}

// ciFuzzHead is a policy with one CI provider, named ci, whose rules take identities of kind.
func ciFuzzHead(kind string) string {
	k := ProviderGitHubActions
	if kind == KindProjectPath {
		k = ProviderGitLabCI
	}
	return "version: 1\nproviders:\n  ci:\n    kind: " + k + "\n"
}

func TestCIIdentityArg(t *testing.T) {
	id, err := ParseIdentityArg("repository:acme/app,repository_owner_id=12,ref=refs/heads/main")
	if err != nil || id.Kind != KindRepository || len(id.Conditions) != 2 {
		t.Fatalf("%+v %v", id, err)
	}
	out, err := insert([]byte(ciFuzzHead(KindRepository)), -1, "deploy", id, "ci")
	if err != nil {
		t.Fatal(err)
	}
	pol := mustParse(t, string(out))
	if got := pol.Rules[0].Identities[0].String(); got != id.String() {
		t.Fatalf("wrote %q, read %q\n%s", id, got, out)
	}
	for _, bad := range []string{"repository:*/app,repository_owner_id=1", "repository:acme/app,owner=1", "repository:acme/app,ref=a,ref=b", "project_path:a/b,ref_protected=maybe"} {
		if _, err := ParseIdentityArg(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
