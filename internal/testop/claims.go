package testop

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"time"
)

// userClaims are the claims about u that both the ID token and userinfo
// carry. email and email_verified are included whenever the user has an
// email, whatever the scope: simpler than scope-driven release, and what
// opkssh's consumers need. Empty fields are left out.
func userClaims(u User) map[string]any {
	c := maps.Clone(u.Extra)
	if c == nil {
		c = make(map[string]any)
	}
	c["sub"] = u.Subject
	if u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if u.Name != "" {
		c["name"] = u.Name
	}
	if len(u.Groups) > 0 {
		c["groups"] = u.Groups
	}
	if len(u.AMR) > 0 {
		c["amr"] = u.AMR
	}
	return c
}

// idTokenClaims are the claims of the ID token issued for code at now
// (OpenID Connect Core section 2). aud is a single string, as most OPs send
// it for a single audience.
func (s *Server) idTokenClaims(u User, code *authCode, now time.Time, accessToken string) map[string]any {
	c := userClaims(u)
	c["iss"] = s.issuer
	c["aud"] = code.clientID
	c["azp"] = code.clientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(s.lifetime).Unix()
	c["auth_time"] = code.authTime.Unix()
	c["at_hash"] = atHash(accessToken)
	if code.nonce != "" {
		c["nonce"] = code.nonce
	} else {
		delete(c, "nonce") // an Extra claim must not pose as a nonce
	}
	return c
}

// atHash is the at_hash claim for RS256 and ES256, which both hash with
// SHA-256 (OpenID Connect Core section 3.1.3.6).
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// handleUserinfo returns the claims of the access token's user (OpenID
// Connect Core section 5.3), with sub first as in the specification's
// examples.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="testop"`)
		http.Error(w, "testop: bearer access token required", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	var user User
	found := false
	if t := s.tokens[token]; t != nil && !s.now().After(t.expires) {
		if i := s.findUserLocked(t.subject); i >= 0 {
			user, found = s.users[i], true
		}
	}
	s.mu.Unlock()
	if !found {
		w.Header().Set("WWW-Authenticate", `Bearer realm="testop", error="invalid_token"`)
		http.Error(w, "testop: invalid or expired access token", http.StatusUnauthorized)
		return
	}

	claims := userClaims(user)
	delete(claims, "sub")
	sub, err := json.Marshal(user.Subject)
	if err != nil {
		http.Error(w, "testop: encoding claims: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rest, err := json.Marshal(claims)
	if err != nil {
		http.Error(w, "testop: encoding claims: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body := append([]byte(`{"sub":`), sub...)
	if len(rest) > 2 { // rest is "{...}"; splice its members after sub
		body = append(body, ',')
		body = append(body, rest[1:len(rest)-1]...)
	}
	body = append(body, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}
