package testop

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

var alice = User{
	Subject:       "alice",
	Email:         "alice@example.com",
	EmailVerified: true,
	Name:          "Alice Example",
	Groups:        []string{"ssh-users", "admins"},
	AMR:           []string{"pwd", "mfa"},
	Extra:         map[string]any{"realm_access": map[string]any{"roles": []any{"admin", "dev"}}},
	Password:      "password",
}

var bob = User{
	Subject:       "bob",
	Email:         "bob@example.com",
	EmailVerified: false,
	Groups:        []string{"ssh-users"},
}

// startOP starts a test OP with alice and bob (if opts has no users) and
// closes it at the end of the test.
func startOP(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Users == nil {
		opts.Users = []User{alice, bob}
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	op, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := op.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return op
}

// callback is a client's loopback redirect endpoint. It records the query
// of the last redirect and answers 400 if it carries an OAuth error, as a
// real client's callback would.
type callback struct {
	srv   *httptest.Server
	mu    sync.Mutex
	query url.Values
}

func newCallback(t *testing.T) *callback {
	t.Helper()
	cb := &callback{}
	cb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.query = r.URL.Query()
		cb.mu.Unlock()
		if r.URL.Query().Has("error") {
			http.Error(w, "login failed: "+r.URL.Query().Get("error"), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "You are logged in; close this window.")
	}))
	t.Cleanup(cb.srv.Close)
	return cb
}

func (cb *callback) url() string { return cb.srv.URL + "/login-callback" }

func (cb *callback) last() url.Values {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.query
}

// flow is one authorization code flow with PKCE, as a client runs it.
type flow struct {
	cfg      oauth2.Config
	cb       *callback
	verifier string
	state    string
	nonce    string
}

func newFlow(t *testing.T, op *Server, clientID, secret string, style oauth2.AuthStyle) *flow {
	t.Helper()
	cb := newCallback(t)
	return &flow{
		cfg: oauth2.Config{
			ClientID:     clientID,
			ClientSecret: secret,
			RedirectURL:  cb.url(),
			Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
			Endpoint: oauth2.Endpoint{
				AuthURL:   op.URL() + "/authorize",
				TokenURL:  op.URL() + "/token",
				AuthStyle: style,
			},
		},
		cb:       cb,
		verifier: oauth2.GenerateVerifier(),
		state:    "state-" + randomToken(),
		nonce:    "nonce-" + randomToken(),
	}
}

func (f *flow) authURL() string {
	return f.cfg.AuthCodeURL(f.state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier))
}

// code runs the browser part of the flow and returns the authorization code.
func (f *flow) code(t *testing.T, user, password string) string {
	t.Helper()
	if err := Browse(t.Context(), f.authURL(), user, password); err != nil {
		t.Fatalf("Browse: %v", err)
	}
	q := f.cb.last()
	if got := q.Get("state"); got != f.state {
		t.Fatalf("callback state = %q, want %q", got, f.state)
	}
	if q.Get("code") == "" {
		t.Fatalf("callback has no code: %v", q)
	}
	return q.Get("code")
}

// login runs the whole flow and returns the token response.
func (f *flow) login(t *testing.T, user, password string) *oauth2.Token {
	t.Helper()
	tok, err := f.cfg.Exchange(t.Context(), f.code(t, user, password), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func idTokenOf(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		t.Fatal("token response has no id_token")
	}
	return raw
}

func newProvider(t *testing.T, op *Server) *oidc.Provider {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), op.Issuer())
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	return p
}

// postToken sends a raw token request and decodes the JSON answer.
func postToken(t *testing.T, op *Server, form url.Values, basicUser, basicPassword string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, op.URL()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPassword))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response is not JSON: %v", err)
	}
	return resp.StatusCode, body
}

// noRedirects is an HTTP client that shows redirects instead of following
// them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}
