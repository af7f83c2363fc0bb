package testop

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// exchangeForm is the token request for a code of f, for raw requests.
func exchangeForm(f *flow, code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.cfg.RedirectURL},
		"client_id":     {f.cfg.ClientID},
		"code_verifier": {f.verifier},
	}
}

func TestTokenErrors(t *testing.T) {
	clock := time.Now()
	op := startOP(t, Options{
		Clients: []Client{
			{ID: "opkssh"},
			{ID: "corp", Secret: "s3cret"},
		},
		AutoApprove: "alice",
		Now:         func() time.Time { return clock },
	})

	tests := []struct {
		name   string
		client string
		change func(form url.Values) (basicUser, basicPassword string)
		status int
		error  string
	}{
		{"wrong PKCE verifier", "opkssh", func(f url.Values) (string, string) {
			f.Set("code_verifier", oauth2.GenerateVerifier())
			return "", ""
		}, 400, "invalid_grant"},
		{"missing PKCE verifier", "opkssh", func(f url.Values) (string, string) {
			f.Del("code_verifier")
			return "", ""
		}, 400, "invalid_grant"},
		{"malformed PKCE verifier", "opkssh", func(f url.Values) (string, string) {
			f.Set("code_verifier", "short")
			return "", ""
		}, 400, "invalid_grant"},
		{"redirect_uri differs", "opkssh", func(f url.Values) (string, string) {
			f.Set("redirect_uri", "http://127.0.0.1:1/other")
			return "", ""
		}, 400, "invalid_grant"},
		{"code of another client", "opkssh", func(f url.Values) (string, string) {
			f.Set("client_id", "corp")
			return "corp", "s3cret"
		}, 400, "invalid_grant"},
		{"unsupported grant_type", "opkssh", func(f url.Values) (string, string) {
			f.Set("grant_type", "password")
			return "", ""
		}, 400, "unsupported_grant_type"},
		{"missing code", "opkssh", func(f url.Values) (string, string) {
			f.Del("code")
			return "", ""
		}, 400, "invalid_request"},
		{"unknown code", "opkssh", func(f url.Values) (string, string) {
			f.Set("code", "nope")
			return "", ""
		}, 400, "invalid_grant"},
		{"unknown client", "opkssh", func(f url.Values) (string, string) {
			f.Set("client_id", "mallory")
			return "", ""
		}, 401, "invalid_client"},
		{"no client at all", "opkssh", func(f url.Values) (string, string) {
			f.Del("client_id")
			return "", ""
		}, 401, "invalid_client"},
		{"public client sends a secret", "opkssh", func(f url.Values) (string, string) {
			f.Set("client_secret", "guess")
			return "", ""
		}, 401, "invalid_client"},
		{"wrong secret, basic", "corp", func(url.Values) (string, string) {
			return "corp", "wrong"
		}, 401, "invalid_client"},
		{"wrong secret, post", "corp", func(f url.Values) (string, string) {
			f.Set("client_secret", "wrong")
			return "", ""
		}, 401, "invalid_client"},
		{"missing secret", "corp", func(url.Values) (string, string) {
			return "", ""
		}, 401, "invalid_client"},
		{"two authentication methods", "corp", func(f url.Values) (string, string) {
			f.Set("client_secret", "s3cret")
			return "corp", "s3cret"
		}, 400, "invalid_request"},
		{"expired code", "opkssh", func(url.Values) (string, string) {
			op.SetNow(func() time.Time { return clock.Add(61 * time.Second) })
			return "", ""
		}, 400, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op.SetNow(func() time.Time { return clock })
			f := newFlow(t, op, tc.client, "", oauth2.AuthStyleInParams)
			form := exchangeForm(f, f.code(t, "", ""))
			user, password := tc.change(form)
			status, body := postToken(t, op, form, user, password)
			if status != tc.status || body["error"] != tc.error {
				t.Errorf("got %d %v, want %d %s", status, body, tc.status, tc.error)
			}
			if body["error_description"] == "" {
				t.Errorf("no error_description: %v", body)
			}
		})
	}
}

func TestCodeReuseRevokesToken(t *testing.T) {
	op := startOP(t, Options{AutoApprove: "alice"})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	form := exchangeForm(f, f.code(t, "", ""))
	status, body := postToken(t, op, form, "", "")
	if status != 200 {
		t.Fatalf("first exchange: %d %v", status, body)
	}
	access := body["access_token"].(string)
	if got := userinfoStatus(t, op, access); got != 200 {
		t.Fatalf("userinfo before replay: %d", got)
	}
	status, body = postToken(t, op, form, "", "")
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("replayed code: %d %v, want 400 invalid_grant", status, body)
	}
	if got := userinfoStatus(t, op, access); got != 401 {
		t.Errorf("userinfo after replay: %d, want 401 (token revoked)", got)
	}
}

func TestUserinfoErrors(t *testing.T) {
	clock := time.Now()
	op := startOP(t, Options{AutoApprove: "alice", Now: func() time.Time { return clock }})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	tok := f.login(t, "", "")
	if got := userinfoStatus(t, op, ""); got != 401 {
		t.Errorf("no token: %d", got)
	}
	if got := userinfoStatus(t, op, "forged"); got != 401 {
		t.Errorf("unknown token: %d", got)
	}
	op.SetNow(func() time.Time { return clock.Add(time.Hour + time.Second) })
	if got := userinfoStatus(t, op, tok.AccessToken); got != 401 {
		t.Errorf("expired token: %d", got)
	}
}

func userinfoStatus(t *testing.T, op *Server, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, op.Issuer()+"/userinfo", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAuthorizeErrors(t *testing.T) {
	op := startOP(t, Options{
		Clients: []Client{
			{ID: "opkssh"},
			{ID: "registered", RedirectURIs: []string{"http://localhost:3000/login-callback"}},
			{ID: "corp", Secret: "s3cret"},
		},
		AutoApprove: "alice",
	})
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	valid := func() url.Values {
		return url.Values{
			"response_type":         {"code"},
			"client_id":             {"opkssh"},
			"redirect_uri":          {"http://127.0.0.1:9/cb?keep=1"},
			"scope":                 {"openid email"},
			"state":                 {"xyz"},
			"code_challenge":        {challenge},
			"code_challenge_method": {"S256"},
		}
	}
	tests := []struct {
		name   string
		change func(url.Values)
		// page: the error is shown to the user (400), not redirected.
		page  bool
		error string
	}{
		{"valid", func(url.Values) {}, false, ""},
		{"unknown client", func(v url.Values) { v.Set("client_id", "mallory") }, true, ""},
		{"missing redirect_uri", func(v url.Values) { v.Del("redirect_uri") }, true, ""},
		{"redirect_uri not registered", func(v url.Values) {
			v.Set("client_id", "registered")
			v.Set("redirect_uri", "http://localhost:3001/login-callback")
		}, true, ""},
		{"registered redirect_uri", func(v url.Values) {
			v.Set("client_id", "registered")
			v.Set("redirect_uri", "http://localhost:3000/login-callback")
		}, false, ""},
		{"non-loopback redirect_uri", func(v url.Values) { v.Set("redirect_uri", "http://evil.example/cb") }, true, ""},
		{"https loopback redirect_uri", func(v url.Values) { v.Set("redirect_uri", "https://127.0.0.1:9/cb") }, true, ""},
		{"repeated parameter", func(v url.Values) { v.Add("state", "again") }, true, ""},
		{"response_type token", func(v url.Values) { v.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"no openid scope", func(v url.Values) { v.Set("scope", "email") }, false, "invalid_scope"},
		{"public client without PKCE", func(v url.Values) {
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, false, "invalid_request"},
		{"plain PKCE", func(v url.Values) { v.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"PKCE method missing", func(v url.Values) { v.Del("code_challenge_method") }, false, "invalid_request"},
		{"malformed challenge", func(v url.Values) { v.Set("code_challenge", "abc") }, false, "invalid_request"},
		{"confidential client without PKCE", func(v url.Values) {
			v.Set("client_id", "corp")
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := valid()
			tc.change(v)
			resp, err := noRedirects.Get(op.Issuer() + "/authorize?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.page {
				if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(string(body), `id="error"`) {
					t.Errorf("got %s Location=%q, want a 400 error page", resp.Status, resp.Header.Get("Location"))
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("got %s, want 302: %s", resp.Status, body)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if q.Get("state") != "xyz" || q.Get("iss") != op.Issuer() {
				t.Errorf("redirect %s lacks state or iss", loc)
			}
			if tc.error == "" {
				if q.Get("code") == "" || q.Has("error") {
					t.Errorf("redirect %s: want a code", loc)
				}
				if v.Get("client_id") == "opkssh" && q.Get("keep") != "1" {
					t.Errorf("redirect %s dropped the redirect_uri's own query", loc)
				}
				return
			}
			if q.Get("error") != tc.error || q.Get("error_description") == "" || q.Has("code") {
				t.Errorf("redirect %s: want error %s", loc, tc.error)
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	op := startOP(t, Options{Users: []User{alice, {Subject: "nopass", Email: "np@example.com"}}})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	// A state that must survive HTML escaping in the hidden fields.
	f.state = `"><script>alert(1)</script>&x=1`

	for _, tc := range []struct{ user, password, want string }{
		{"alice@example.com", "wrong", "Wrong username or password"},
		{"alice", "", "Wrong username or password"},
		{"nobody@example.com", "password", "Wrong username or password"},
	} {
		err := Browse(t.Context(), f.authURL(), tc.user, tc.password)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Browse as %s/%s: %v, want %q", tc.user, tc.password, err, tc.want)
		}
	}
	if f.cb.last() != nil {
		t.Errorf("callback reached after failed logins: %v", f.cb.last())
	}
	// By subject, and a user without password accepts any.
	f.login(t, "alice", "password")
	f.login(t, "np@example.com", "anything")
}

func TestPromptNoneInFormMode(t *testing.T) {
	op := startOP(t, Options{})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	u := f.cfg.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oauth2.SetAuthURLParam("prompt", "none"))
	if err := Browse(t.Context(), u, "", ""); err == nil {
		t.Fatal("Browse succeeded, want the callback to reject login_required")
	}
	if got := f.cb.last().Get("error"); got != "login_required" {
		t.Errorf("error = %q, want login_required", got)
	}
}

func TestAutoApproveUnknownUser(t *testing.T) {
	op := startOP(t, Options{AutoApprove: "nobody"})
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	if err := Browse(t.Context(), f.authURL(), "", ""); err == nil {
		t.Fatal("Browse succeeded, want access_denied")
	}
	if got := f.cb.last().Get("error"); got != "access_denied" {
		t.Errorf("error = %q, want access_denied", got)
	}
	// Switching users and modes at run time.
	op.AddUser(User{Subject: "nobody"})
	f.login(t, "", "")
	op.SetAutoApprove("")
	f.login(t, "alice", "password")
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1"} {
		if op, err := Start(Options{Addr: addr}); err == nil {
			op.Close()
			t.Errorf("Start(%q) succeeded", addr)
		}
	}
	op := startOP(t, Options{Addr: "localhost:0"})
	if !strings.HasPrefix(op.Issuer(), "http://127.0.0.1:") && !strings.HasPrefix(op.Issuer(), "http://[::1]:") {
		t.Errorf("issuer %s", op.Issuer())
	}
}

func TestBadOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"alg":            {Alg: "HS256"},
		"keys":           {Keys: -1},
		"lifetime":       {TokenLifetime: -time.Second},
		"duplicate user": {Users: []User{alice, alice}},
		"no subject":     {Users: []User{{Email: "x@example.com"}}},
		"empty client":   {Clients: []Client{{}}},
		"dup client":     {Clients: []Client{{ID: "a"}, {ID: "a"}}},
	} {
		if op, err := Start(opts); err == nil {
			op.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	op := startOP(t, Options{Keys: 1})
	resp, err := http.Get(op.Issuer() + "/token")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /token: %s", resp.Status)
	}
}
