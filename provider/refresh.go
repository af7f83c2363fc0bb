package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/idtoken"
)

// Refresh: where the OP hands out refresh tokens, "opkssh login --if-needed" renews an expiring
// login without a browser.
//
// A refreshed ID token cannot commit to a key: the refresh request carries no nonce of ours. So a
// refresh keeps the key pair and the original PK token, whose ID token commits to that key, and
// appends the new ID token as the PK token's FreshIDToken (openpubkey's model; the compact form
// ends in ".<jwt>"). The certificate is re-issued for the same key with a validity that starts at
// the new token's iat. Servers then apply their expiration rule to the refreshed token once it
// has verified and agrees with the original (CheckRefreshed).
//
// What ties the refreshed token to this key is only that it continues the same login. sub, iss
// and aud are not enough: every certificate the user presents carries an ID token, so a server
// the user logs in to collects them, and an old key from an earlier login (a backup, an old disk)
// plus any later ID token of the same user would otherwise make a working login again. OpenID
// Connect Core section 12.2 says a refreshed ID token keeps the original auth_time, and OPs that
// repeat the nonce repeat the original one; CheckRefreshed requires one of the two to match. OPs
// whose tokens carry neither (Google, and Microsoft Entra unless auth_time is added as an
// optional claim) cannot extend a login this way, and the client falls back to the browser.
//
// The refresh token is a long-lived secret, kept in RefreshTokenPath(key) with mode 0600 beside
// the private key it belongs to. It is useless without that key (the refreshed token extends only
// the login of the key committed in the PK token), and the key is useless past its login's expiry
// without it; together they are a login for as long as the OP keeps honouring the refresh token.

// ScopeOfflineAccess asks the OP for a refresh token (OpenID Connect Core section 11). Login adds
// it to the scopes when the OP's discovery document lists it and refresh tokens are not turned off.
const ScopeOfflineAccess = "offline_access"

// withOfflineAccess returns the scopes to ask for: cfg's, plus ScopeOfflineAccess when the OP's
// discovery document offers it (and the refresh grant, if it lists grants), unless cfg turns
// refresh tokens off. The bool says whether offline_access is among them.
func withOfflineAccess(op *oidc.Provider, cfg Config) ([]string, bool) {
	if cfg.NoRefreshToken {
		return slices.DeleteFunc(slices.Clone(cfg.Scopes), func(s string) bool { return s == ScopeOfflineAccess }), false
	}
	if slices.Contains(cfg.Scopes, ScopeOfflineAccess) {
		return cfg.Scopes, true
	}
	var d struct {
		Scopes []string `json:"scopes_supported"`
		Grants []string `json:"grant_types_supported"`
	}
	if op.Claims(&d) != nil || !slices.Contains(d.Scopes, ScopeOfflineAccess) ||
		len(d.Grants) > 0 && !slices.Contains(d.Grants, "refresh_token") {
		return cfg.Scopes, false
	}
	return append(slices.Clone(cfg.Scopes), ScopeOfflineAccess), true
}

// offlineHint adds the way out to a login error that may come from asking for offline_access:
// Keycloak refuses it to users without the offline_access role, some OPs to clients that may
// not use the refresh grant.
func offlineHint(err error, offline bool) error {
	msg := strings.ToLower(err.Error())
	if !offline || !strings.Contains(msg, "invalid_scope") && !strings.Contains(msg, "offline") {
		return err
	}
	return fmt.Errorf("%w (opkssh asked for a refresh token with the scope offline_access; if the OP does not allow that, log in with --no-refresh-token, or set no_refresh_token: true for the provider in the configuration file)", err)
}

// RefreshTokenPath is where login keeps the refresh token of the private key at keyPath.
func RefreshTokenPath(keyPath string) string { return keyPath + ".refresh" }

// StoredRefreshToken is the refresh token file: the token and the OP client it was issued to.
type StoredRefreshToken struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	RefreshToken string `json:"refresh_token"`
}

// SaveRefreshToken writes t to path with mode 0600, atomically.
func SaveRefreshToken(path string, t StoredRefreshToken) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// ErrNotRefreshTokenFile means a file is not a refresh token file written by opkssh.
var ErrNotRefreshTokenFile = errors.New("not a refresh token file of opkssh")

// LoadRefreshToken reads a refresh token file. It refuses a file that others may read, as ssh
// refuses such a private key, and one that is not a refresh token file of opkssh
// (ErrNotRefreshTokenFile).
func LoadRefreshToken(path string) (StoredRefreshToken, error) {
	var t StoredRefreshToken
	f, err := os.Open(path)
	if err != nil {
		return t, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return t, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 64<<10 {
		return t, fmt.Errorf("%s: %w", path, ErrNotRefreshTokenFile)
	}
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || t.Issuer == "" || t.ClientID == "" || t.RefreshToken == "" {
		return StoredRefreshToken{}, fmt.Errorf("%s: %w", path, ErrNotRefreshTokenFile)
	}
	// Windows reports no Unix permissions (every writable file is 0666); the file is guarded by the
	// ACL it inherits from the profile directory instead.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return StoredRefreshToken{}, fmt.Errorf("%s has mode %#o: a refresh token must be readable by its owner only; remove the file (or chmod 600 it if you trust that nobody copied it)", path, fi.Mode().Perm())
	}
	return t, nil
}

// RemoveRefreshToken removes the refresh token file at path, if there is one.
func RemoveRefreshToken(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Errors of Refresh after which the stored refresh token is of no further use.
var (
	// ErrRefreshRejected: the OP refused the refresh token (invalid_grant): revoked, expired,
	// already used, or the user's session ended.
	ErrRefreshRejected = errors.New("the OP no longer accepts the refresh token")
	// ErrRefreshUnusable: the OP refreshed, but its answer cannot extend the login (no ID token,
	// or one that does not continue the original login; see idtoken.CheckRefreshed).
	ErrRefreshUnusable = errors.New("the OP's refreshed ID token cannot extend the login")
)

// RefreshResult is what a successful refresh produced.
type RefreshResult struct {
	IDToken      []byte // the refreshed ID token, compact
	Claims       IDClaims
	RefreshToken string // the rotated refresh token, or the one used if the OP did not rotate it
}

// Refresh redeems refreshToken at cfg's OP for a new ID token, verifies it as login does (the OP's
// signature, issuer, audience cfg.ClientID, expiry) and checks that it continues the login whose
// ID token payload (claims JSON) is original. The caller must store RefreshResult.RefreshToken:
// OPs that rotate refresh tokens invalidate the one used.
func Refresh(ctx context.Context, cfg Config, original []byte, refreshToken string, hc *http.Client) (*RefreshResult, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	octx := oidc.ClientContext(ctx, hc)
	op, err := oidc.NewProvider(octx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s failed: %w", cfg.Issuer, err)
	}
	oc := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: op.Endpoint()}
	if cfg.ClientSecret == "" {
		oc.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	// A token without an access token is expired, so the source refreshes at once.
	tok, err := oc.TokenSource(octx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return nil, fmt.Errorf("%w (%v)", ErrRefreshRejected, oauthError(err))
		}
		return nil, fmt.Errorf("refreshing at %s: %w", cfg.Issuer, oauthError(err))
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: the OP's refresh response has no ID token", ErrRefreshUnusable)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(octx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: it did not verify: %v", ErrRefreshUnusable, err)
	}
	var payload json.RawMessage
	var c struct {
		Email string `json:"email"`
	}
	if err := idt.Claims(&payload); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefreshUnusable, err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefreshUnusable, err)
	}
	if err := idtoken.CheckRefreshed(original, payload); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefreshUnusable, err)
	}
	next := tok.RefreshToken
	if next == "" {
		next = refreshToken
	}
	return &RefreshResult{
		IDToken:      []byte(raw),
		Claims:       IDClaims{Issuer: idt.Issuer, Subject: idt.Subject, Email: c.Email, IssuedAt: idt.IssuedAt, Expiry: idt.Expiry},
		RefreshToken: next,
	}, nil
}
