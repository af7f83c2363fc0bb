package testop

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Refresh tokens (RFC 6749 sections 1.5 and 6, OpenID Connect Core section 12). A login whose
// scope has offline_access gets one with its tokens. Each use rotates it: the answer carries a
// new refresh token and the one presented is spent. Presenting a spent one again is taken as
// theft and revokes every token descended from the same login (RFC 9700 section 4.14.2), as does
// replaying the authorization code. The ID token of a refresh has the original login's sub, aud,
// azp and auth_time, a new iat and exp, and no nonce (OpenID Connect Core section 12.2).

// GrantTypeRefreshToken is the grant_type of a refresh request.
const GrantTypeRefreshToken = "refresh_token"

// ScopeOfflineAccess asks for a refresh token (OpenID Connect Core section 11).
const ScopeOfflineAccess = "offline_access"

// refreshTokenLifetime bounds each refresh token, so that a long-running demo OP forgets them.
const refreshTokenLifetime = 30 * 24 * time.Hour

// refreshGrant is an issued refresh token and the login it continues.
type refreshGrant struct {
	clientID string
	subject  string
	scope    string
	authTime time.Time // of the original login; refreshed ID tokens repeat it
	family   string    // the first token of the login; all its successors share it
	expires  time.Time
	used     bool // rotated away: presenting it again revokes the family
}

// RevokeRefreshTokens revokes every refresh token of the user with that subject or email, as an
// administrator ending the user's sessions would, and returns how many there were.
func (s *Server) RevokeRefreshTokens(subjectOrEmail string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findUserLocked(subjectOrEmail)
	if i < 0 {
		return 0
	}
	n := 0
	for k, g := range s.refresh {
		if g.subject == s.users[i].Subject {
			delete(s.refresh, k)
			if !g.used {
				n++
			}
		}
	}
	return n
}

// GrantRequests returns how many token requests with that grant_type (e.g. "refresh_token") have
// arrived so far, successful or not.
func (s *Server) GrantRequests(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[grantType]
}

// issueRefreshLocked records a new refresh token for g if its scope asks for one, and returns it
// ("" if not). An empty g.family starts a new family.
func (s *Server) issueRefreshLocked(g refreshGrant, now time.Time) string {
	if !slices.Contains(strings.Fields(g.scope), ScopeOfflineAccess) {
		return ""
	}
	for k, old := range s.refresh {
		if now.After(old.expires) {
			delete(s.refresh, k)
		}
	}
	token := randomToken()
	if g.family == "" {
		g.family = token
	}
	g.used, g.expires = false, now.Add(refreshTokenLifetime)
	s.refresh[token] = &g
	return token
}

// revokeRefreshLocked revokes the family of the refresh token, if it still exists.
func (s *Server) revokeRefreshLocked(token string) {
	g := s.refresh[token]
	if g == nil {
		return
	}
	for k, other := range s.refresh {
		if other.family == g.family {
			delete(s.refresh, k)
		}
	}
}

// refreshToken answers a refresh request (RFC 6749 section 6) from an authenticated client.
func (s *Server) refreshToken(form url.Values, client Client) (*tokenResponse, *tokenError) {
	token := form.Get("refresh_token")
	if token == "" {
		return nil, invalidRequest("refresh_token is missing")
	}
	access := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g := s.refresh[token]
	switch {
	case g == nil:
		return nil, invalidGrant("unknown or revoked refresh token")
	case g.clientID != client.ID:
		return nil, invalidGrant("refresh token was issued to another client")
	case g.used:
		s.revokeRefreshLocked(token)
		return nil, invalidGrant("refresh token was already used; every refresh token of this login is revoked")
	case now.After(g.expires):
		delete(s.refresh, token)
		return nil, invalidGrant("refresh token expired")
	}
	scope := g.scope
	if requested := form.Get("scope"); requested != "" {
		// A refresh may narrow the scope, never widen it (RFC 6749 section 6).
		granted := strings.Fields(g.scope)
		for _, sc := range strings.Fields(requested) {
			if !slices.Contains(granted, sc) {
				return nil, &tokenError{http.StatusBadRequest, "invalid_scope", "scope " + sc + " was not granted to the original login"}
			}
		}
		scope = requested
	}
	i := s.findUserLocked(g.subject)
	if i < 0 {
		return nil, invalidGrant("user " + g.subject + " no longer exists")
	}
	g.used = true
	next := s.issueRefreshLocked(refreshGrant{clientID: g.clientID, subject: g.subject, scope: g.scope, authTime: g.authTime, family: g.family}, now)
	s.tokens[access] = &accessToken{subject: g.subject, expires: now.Add(s.lifetime)}
	claims := s.idTokenClaims(s.users[i], &authCode{clientID: g.clientID, authTime: g.authTime}, now, access)
	idToken, err := s.keys[len(s.keys)-1].signClaims(claims, s.quirks.NoKID)
	if err != nil {
		return nil, &tokenError{http.StatusInternalServerError, "server_error", err.Error()}
	}
	return &tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.lifetime / time.Second),
		IDToken:      idToken,
		RefreshToken: next,
		Scope:        scope,
	}, nil
}
