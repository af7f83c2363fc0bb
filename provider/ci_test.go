package provider

import (
	"testing"
)

// FuzzCITokenResponse feeds the parsers of what a CI platform hands the job: the token endpoint's
// response and the token's claims. They return errors, never panic.
func FuzzCITokenResponse(f *testing.F) {
	f.Add([]byte(`{"count":3,"value":"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4Iiwic3ViIjoieSIsImV4cCI6MX0.c2ln"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"value":""}`))
	f.Add([]byte(`{"value":7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := parseActionsTokenResponse(body)
		if err != nil {
			return
		}
		c, err := unverifiedCIClaims(tok)
		if err != nil {
			return
		}
		for _, p := range []string{CIGitHubActions, CIGitLab} {
			_ = checkCIClaims(p, c, "commitment")
		}
	})
}

func TestCIResponseErrors(t *testing.T) {
	for _, body := range []string{`{}`, `{"value":""}`, `not json`, `{"value":"a.b"}`} {
		tok, err := parseActionsTokenResponse([]byte(body))
		if err == nil {
			_, err = unverifiedCIClaims(tok)
		}
		if err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}
