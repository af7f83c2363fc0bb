package testop

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// offlineLogin runs the code flow for alice with offline_access and returns the token response.
func offlineLogin(t *testing.T, op *Server, clientID, secret string) (*flow, *oauth2.Token) {
	t.Helper()
	style := oauth2.AuthStyleInParams
	if secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	f := newFlow(t, op, clientID, secret, style)
	f.cfg.Scopes = append(f.cfg.Scopes, ScopeOfflineAccess)
	tok := f.login(t, "alice", "password")
	if tok.RefreshToken == "" {
		t.Fatal("a login with offline_access got no refresh token")
	}
	return f, tok
}

func refreshForm(clientID, token string) url.Values {
	return url.Values{"grant_type": {GrantTypeRefreshToken}, "client_id": {clientID}, "refresh_token": {token}}
}

func TestRefreshRotatesAndKeepsTheLogin(t *testing.T) {
	now := time.Now()
	op := startOP(t, Options{Now: func() time.Time { return now }})
	f, tok := offlineLogin(t, op, "opkssh", "")
	verifier := newProvider(t, op).Verifier(&oidc.Config{ClientID: "opkssh", Now: func() time.Time { return now }})
	first, err := verifier.Verify(t.Context(), idTokenOf(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	var firstClaims idClaims
	first.Claims(&firstClaims)

	// An hour later, through golang.org/x/oauth2's own refresh.
	now = now.Add(time.Hour)
	op.SetNow(func() time.Time { return now })
	expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: now.Add(-time.Second)}
	next, err := f.cfg.TokenSource(t.Context(), expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token not rotated: %q", next.RefreshToken)
	}
	idt, err := verifier.Verify(t.Context(), idTokenOf(t, next))
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var c idClaims
	idt.Claims(&c)
	switch {
	case idt.Subject != first.Subject || idt.Issuer != first.Issuer || !slices.Equal(idt.Audience, first.Audience):
		t.Errorf("sub, iss, aud = %q %q %q, want those of the login", idt.Subject, idt.Issuer, idt.Audience)
	case !idt.IssuedAt.Equal(first.IssuedAt.Add(time.Hour)) || !idt.Expiry.Equal(idt.IssuedAt.Add(time.Hour)):
		t.Errorf("iat %v exp %v, want the refresh time and an hour later", idt.IssuedAt, idt.Expiry)
	case idt.Nonce != "":
		t.Errorf("refreshed ID token has nonce %q", idt.Nonce)
	case c.AuthTime != firstClaims.AuthTime || c.AZP != "opkssh" || c.Email != "alice@example.com":
		t.Errorf("claims %+v, want auth_time %d of the login", c, firstClaims.AuthTime)
	}
	if err := idt.VerifyAccessToken(next.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	if op.GrantRequests(GrantTypeRefreshToken) != 1 || op.GrantRequests("authorization_code") != 1 {
		t.Errorf("grant counters: refresh %d, code %d", op.GrantRequests(GrantTypeRefreshToken), op.GrantRequests("authorization_code"))
	}

	// The spent token is refused, and presenting it revokes its successor too.
	if code, body := postToken(t, op, refreshForm("opkssh", tok.RefreshToken), "", ""); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %v", code, body)
	}
	if code, body := postToken(t, op, refreshForm("opkssh", next.RefreshToken), "", ""); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("successor of a replayed refresh token: %d %v", code, body)
	}
}

func TestRefreshOnlyWithOfflineAccess(t *testing.T) {
	op := startOP(t, Options{})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	if tok := f.login(t, "alice", "password"); tok.RefreshToken != "" {
		t.Fatal("a login without offline_access got a refresh token")
	}
	var d struct {
		Scopes []string `json:"scopes_supported"`
		Grants []string `json:"grant_types_supported"`
	}
	if err := newProvider(t, op).Claims(&d); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Scopes, ScopeOfflineAccess) || !slices.Contains(d.Grants, GrantTypeRefreshToken) {
		t.Fatalf("discovery: scopes %q, grants %q", d.Scopes, d.Grants)
	}
}

func TestRefreshRevoked(t *testing.T) {
	op := startOP(t, Options{})
	_, tok := offlineLogin(t, op, "opkssh", "")
	_, tok2 := offlineLogin(t, op, "opkssh", "")
	if n := op.RevokeRefreshTokens("alice@example.com"); n != 2 {
		t.Fatalf("revoked %d refresh tokens, want 2", n)
	}
	for _, rt := range []string{tok.RefreshToken, tok2.RefreshToken} {
		if code, body := postToken(t, op, refreshForm("opkssh", rt), "", ""); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("revoked refresh token: %d %v", code, body)
		}
	}
	if n := op.RevokeRefreshTokens("nobody"); n != 0 {
		t.Fatalf("revoked %d tokens of an unknown user", n)
	}
}

func TestRefreshClientAuthentication(t *testing.T) {
	op := startOP(t, Options{Clients: []Client{{ID: "opkssh"}, {ID: "other"}, {ID: "conf", Secret: "s3cret"}}})
	_, public := offlineLogin(t, op, "opkssh", "")
	_, conf := offlineLogin(t, op, "conf", "s3cret")
	cases := []struct {
		name        string
		form        url.Values
		user, pass  string
		status      int
		errorCode   string
		description string
	}{
		{"another client", refreshForm("other", public.RefreshToken), "", "", http.StatusBadRequest, "invalid_grant", "refresh token was issued to another client"},
		{"unknown client", refreshForm("nobody", public.RefreshToken), "", "", http.StatusUnauthorized, "invalid_client", ""},
		{"confidential client without its secret", refreshForm("conf", conf.RefreshToken), "", "", http.StatusUnauthorized, "invalid_client", ""},
		{"confidential client with a wrong secret", url.Values{"grant_type": {GrantTypeRefreshToken}, "refresh_token": {conf.RefreshToken}}, "conf", "wrong", http.StatusUnauthorized, "invalid_client", ""},
		{"no refresh_token", url.Values{"grant_type": {GrantTypeRefreshToken}, "client_id": {"opkssh"}}, "", "", http.StatusBadRequest, "invalid_request", ""},
		{"unknown refresh token", refreshForm("opkssh", "made-up"), "", "", http.StatusBadRequest, "invalid_grant", ""},
		{"wider scope", func() url.Values {
			v := refreshForm("opkssh", public.RefreshToken)
			v.Set("scope", "openid groups")
			return v
		}(), "", "", http.StatusBadRequest, "invalid_scope", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postToken(t, op, tc.form, tc.user, tc.pass)
			if code != tc.status || body["error"] != tc.errorCode {
				t.Fatalf("got %d %v, want %d %s", code, body, tc.status, tc.errorCode)
			}
			if tc.description != "" && body["error_description"] != tc.description {
				t.Fatalf("error_description %q", body["error_description"])
			}
		})
	}
	// None of the refused requests spent the tokens.
	if code, body := postToken(t, op, refreshForm("opkssh", public.RefreshToken), "", ""); code != http.StatusOK || body["refresh_token"] == "" {
		t.Fatalf("public client after the refusals: %d %v", code, body)
	}
	form := url.Values{"grant_type": {GrantTypeRefreshToken}, "refresh_token": {conf.RefreshToken}}
	if code, body := postToken(t, op, form, "conf", "s3cret"); code != http.StatusOK || body["id_token"] == "" {
		t.Fatalf("confidential client with its secret: %d %v", code, body)
	}
}

func TestCodeReplayRevokesRefreshToken(t *testing.T) {
	op := startOP(t, Options{})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	f.cfg.Scopes = append(f.cfg.Scopes, ScopeOfflineAccess)
	code := f.code(t, "alice", "password")
	tok, err := f.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cfg.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier)); err == nil {
		t.Fatal("replayed code accepted")
	}
	if status, body := postToken(t, op, refreshForm("opkssh", tok.RefreshToken), "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh token of a replayed code: %d %v", status, body)
	}
}

func TestDeviceLoginGetsRefreshToken(t *testing.T) {
	op := startOP(t, Options{AutoApprove: "alice"})
	code, body := postForm(t, op, "/device_authorization", url.Values{"client_id": {"opkssh"}, "scope": {"openid " + ScopeOfflineAccess}})
	if code != http.StatusOK {
		t.Fatalf("device authorization: %d %v", code, body)
	}
	dc, _ := body["device_code"].(string)
	code, body = pollDevice(t, op, dc)
	rt, _ := body["refresh_token"].(string)
	if code != http.StatusOK || rt == "" {
		t.Fatalf("device token: %d %v", code, body)
	}
	if code, body := postToken(t, op, refreshForm("opkssh", rt), "", ""); code != http.StatusOK {
		t.Fatalf("refresh after a device login: %d %v", code, body)
	}
}
