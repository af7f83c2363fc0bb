package policy

import "testing"

func TestSigners(t *testing.T) {
	pol, err := Parse("s.yaml", []byte(`version: 1
providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
signers:
  - provider: corp
    identities: [{email: alice@example.com}]
    namespaces: [git]
  - provider: corp
    identities: [{group: release}]
deny:
  - email: mallory@example.com
`))
	if err != nil {
		t.Fatal(err)
	}
	alice := Claims{"iss": "https://sso.example.com", "sub": "a", "email": "alice@example.com", "email_verified": true}
	if d := pol.EvaluateSigner("corp", "git", alice); !d.Allowed {
		t.Errorf("alice for git: %+v", d)
	}
	if d := pol.EvaluateSigner("corp", "file", alice); d.Allowed {
		t.Errorf("alice for file allowed: %+v", d)
	}
	rel := Claims{"iss": "https://sso.example.com", "sub": "r", "groups": []any{"release"}}
	if d := pol.EvaluateSigner("corp", "file", rel); !d.Allowed {
		t.Errorf("release group: %+v", d)
	}
	mallory := Claims{"iss": "https://sso.example.com", "sub": "m", "email": "mallory@example.com", "email_verified": true, "groups": []any{"release"}}
	if d := pol.EvaluateSigner("corp", "file", mallory); d.Allowed || d.Reason != ReasonDenyList {
		t.Errorf("deny list: %+v", d)
	}
	if _, err := Parse("s.yaml", []byte("version: 1\nproviders:\n  corp:\n    issuer: https://sso.example.com\n    client_ids: [opkssh]\nsigners:\n  - provider: nope\n    identities: [{email: a@b.c}]\n")); err == nil {
		t.Error("a signers entry naming an unknown provider was accepted")
	}
	if _, err := Parse("s.yaml", []byte("version: 1\nproviders:\n  corp:\n    issuer: https://sso.example.com\n    client_ids: [opkssh]\nsigners:\n  - provider: corp\n")); err == nil {
		t.Error("a signers entry without identities was accepted")
	}
}
