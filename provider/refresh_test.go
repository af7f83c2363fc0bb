package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/opkssh-team/opkssh/internal/idtoken"
	"github.com/opkssh-team/opkssh/internal/testop"
)

func TestRefreshTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := RefreshTokenPath(filepath.Join(dir, "id_ecdsa"))
	if path != filepath.Join(dir, "id_ecdsa.refresh") {
		t.Fatalf("RefreshTokenPath = %s", path)
	}
	want := StoredRefreshToken{Issuer: "https://op", ClientID: "opkssh", RefreshToken: "rt"}
	if err := SaveRefreshToken(path, want); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %#o, want 0600", fi.Mode().Perm())
	}
	if got, err := LoadRefreshToken(path); err != nil || got != want {
		t.Fatalf("LoadRefreshToken = %+v, %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadRefreshToken(path); err == nil || !strings.Contains(err.Error(), "readable by its owner only") {
		t.Fatalf("mode 0644: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte(`{"issuer":"x","client_id":"y"}`), 0o600)
	if _, err := LoadRefreshToken(path); !errors.Is(err, ErrNotRefreshTokenFile) {
		t.Fatalf("no token: %v", err)
	}
	if err := RemoveRefreshToken(path); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRefreshToken(path); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
	if _, err := LoadRefreshToken(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// freeRedirect returns a loopback redirect URI on a port that was free a moment ago.
func freeRedirect(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/login-callback"
}

// loginAt logs alice in at op through the browser login and returns the result.
func loginAt(t *testing.T, op *testop.Server, cfg Config) *LoginResult {
	t.Helper()
	cfg.Issuer, cfg.ClientID = op.Issuer(), "opkssh"
	cfg.RedirectURIs = []string{freeRedirect(t)}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Login(ctx, cfg, LoginOptions{Signer: key, Alg: "ES256", OpenBrowser: func(u string) error {
		go testop.Browse(ctx, u, "alice", "")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLoginAsksForRefreshToken(t *testing.T) {
	op, err := testop.Start(testop.Options{Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if res := loginAt(t, op, Config{}); res.RefreshToken == "" {
		t.Fatal("login at an OP offering offline_access got no refresh token")
	}
	if res := loginAt(t, op, Config{NoRefreshToken: true}); res.RefreshToken != "" {
		t.Fatal("login with NoRefreshToken got a refresh token")
	}
}

func TestRefresh(t *testing.T) {
	now := time.Now()
	op, err := testop.Start(testop.Options{
		Users:         []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}},
		TokenLifetime: 48 * time.Hour,
		Now:           func() time.Time { return now.Add(-25 * time.Hour) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	login := loginAt(t, op, Config{})
	op.SetNow(nil)
	cfg := Config{Issuer: op.Issuer(), ClientID: "opkssh"}
	ctx := context.Background()

	res, err := Refresh(ctx, cfg, login.PKToken.Payload, login.RefreshToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.RefreshToken == "" || res.RefreshToken == login.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	if res.Claims.Subject != "alice" || res.Claims.Email != "alice@example.com" || res.Claims.IssuedAt.Sub(login.Claims.IssuedAt) < 24*time.Hour {
		t.Fatalf("refreshed claims %+v, login %+v", res.Claims, login.Claims)
	}
	if err := idtoken.CheckRefreshed(login.PKToken.Payload, payloadOf(t, res.IDToken)); err != nil {
		t.Fatalf("refreshed token does not continue the login: %v", err)
	}
	if op.GrantRequests(testop.GrantTypeRefreshToken) != 1 {
		t.Fatalf("%d refresh requests", op.GrantRequests(testop.GrantTypeRefreshToken))
	}

	// The spent token is refused, for good.
	if _, err := Refresh(ctx, cfg, login.PKToken.Payload, login.RefreshToken, nil); !errors.Is(err, ErrRefreshRejected) {
		t.Fatalf("spent refresh token: %v", err)
	}
	// Revoked at the OP.
	op.SetNow(func() time.Time { return time.Now().Add(-10 * time.Minute) })
	other := loginAt(t, op, Config{})
	op.SetNow(nil)
	op.RevokeRefreshTokens("alice")
	if _, err := Refresh(ctx, cfg, other.PKToken.Payload, other.RefreshToken, nil); !errors.Is(err, ErrRefreshRejected) {
		t.Fatalf("revoked refresh token: %v", err)
	}
	// A refresh token of another login does not extend this one.
	third := loginAt(t, op, Config{})
	if _, err := Refresh(ctx, cfg, other.PKToken.Payload, third.RefreshToken, nil); !errors.Is(err, ErrRefreshUnusable) {
		t.Fatalf("refresh token of another login: %v", err)
	}
	// The OP is down: not the token's fault.
	op.Close()
	if _, err := Refresh(ctx, cfg, other.PKToken.Payload, "x", nil); err == nil || errors.Is(err, ErrRefreshRejected) || errors.Is(err, ErrRefreshUnusable) {
		t.Fatalf("OP down: %v", err)
	}
}

func payloadOf(t *testing.T, jwt []byte) []byte {
	t.Helper()
	parts := strings.Split(string(jwt), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWithOfflineAccess(t *testing.T) {
	var doc string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, doc)
	}))
	defer srv.Close()
	base := `{"issuer":"` + srv.URL + `","authorization_endpoint":"` + srv.URL + `/a","token_endpoint":"` + srv.URL + `/t","jwks_uri":"` + srv.URL + `/k"`
	for _, tc := range []struct {
		name, discovery string
		cfg             Config
		want            string
	}{
		{"offered", `,"scopes_supported":["openid","offline_access"]}`, Config{}, "openid email offline_access"},
		{"offered with the refresh grant", `,"scopes_supported":["offline_access"],"grant_types_supported":["authorization_code","refresh_token"]}`, Config{}, "openid email offline_access"},
		{"offered without the refresh grant", `,"scopes_supported":["offline_access"],"grant_types_supported":["authorization_code"]}`, Config{}, "openid email"},
		{"not offered (Google)", `,"scopes_supported":["openid","email","profile"]}`, Config{}, "openid email"},
		{"no scopes_supported", `}`, Config{}, "openid email"},
		{"turned off", `,"scopes_supported":["offline_access"]}`, Config{NoRefreshToken: true}, "openid email"},
		{"turned off, though configured", `,"scopes_supported":["offline_access"]}`, Config{NoRefreshToken: true, Scopes: []string{"openid", "offline_access", "email"}}, "openid email"},
		{"configured", `}`, Config{Scopes: []string{"openid", "offline_access"}}, "openid offline_access"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc = base + tc.discovery
			op, err := oidc.NewProvider(context.Background(), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			if cfg.Scopes == nil {
				cfg.Scopes = []string{"openid", "email"}
			}
			got, offline := withOfflineAccess(op, cfg)
			if strings.Join(got, " ") != tc.want || offline != strings.Contains(tc.want, ScopeOfflineAccess) {
				t.Fatalf("scopes %q, offline %v; want %q", got, offline, tc.want)
			}
		})
	}
}

func TestConfigNoRefreshToken(t *testing.T) {
	f, err := ParseConfig("config.yaml", []byte("providers:\n  corp:\n    issuer: https://sso.example.com\n    client_id: opkssh\n    no_refresh_token: true\n  other:\n    issuer: https://other.example.com\n    client_id: opkssh\n"))
	if err != nil {
		t.Fatal(err)
	}
	corp, _ := f.Provider("corp")
	other, _ := f.Provider("other")
	if !corp.NoRefreshToken || other.NoRefreshToken {
		t.Fatalf("no_refresh_token: corp %v, other %v", corp.NoRefreshToken, other.NoRefreshToken)
	}
	if !other.With(Overrides{NoRefreshToken: true}).NoRefreshToken || !corp.With(Overrides{}).NoRefreshToken {
		t.Fatal("the flag turns refresh tokens off; no flag leaves the file's setting")
	}
}

func TestOfflineHint(t *testing.T) {
	refused := errors.New("the OP refused the login: invalid_scope: offline_access is not allowed")
	keycloak := errors.New("exchanging the authorization code: not_allowed: Offline tokens not allowed for the user or client")
	other := errors.New("the OP refused the login: access_denied")
	for _, tc := range []struct {
		err     error
		offline bool
		hint    bool
	}{
		{refused, true, true}, {keycloak, true, true}, {other, true, false}, {refused, false, false},
	} {
		got := offlineHint(tc.err, tc.offline)
		if !errors.Is(got, tc.err) || strings.Contains(got.Error(), "--no-refresh-token") != tc.hint {
			t.Errorf("offlineHint(%q, %v) = %q", tc.err, tc.offline, got)
		}
	}
}
