package testop

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
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
	c["iss"] = s.issClaim(u)
	c["aud"] = s.quirks.audience(code.clientID)
	c["azp"] = code.clientID
	if s.quirks.AZP != "" {
		c["azp"] = s.quirks.AZP
	}
	c["iat"] = now.Unix()
	c["exp"] = now.Add(s.lifetime).Unix()
	if s.quirks.NotBefore != 0 {
		c["nbf"] = now.Add(s.quirks.NotBefore).Unix()
	} else {
		delete(c, "nbf")
	}
	if tid := s.tenantOf(u); tid != "" {
		c["tid"] = tid
	}
	c["auth_time"] = code.authTime.Unix()
	c["at_hash"] = atHash(s.alg, accessToken)
	if code.nonce != "" {
		c["nonce"] = code.nonce
	} else {
		delete(c, "nonce") // an Extra claim must not pose as a nonce
	}
	return c
}

// atHash is the at_hash claim: the left half of the access token's hash by the hash function
// of the ID token's alg (OpenID Connect Core section 3.1.3.6); SHA-512 for EdDSA with Ed25519.
func atHash(alg jwa.SignatureAlgorithm, accessToken string) string {
	var sum []byte
	switch alg {
	case jwa.RS384(), jwa.PS384(), jwa.ES384():
		h := sha512.Sum384([]byte(accessToken))
		sum = h[:]
	case jwa.RS512(), jwa.PS512(), jwa.ES512(), jwa.EdDSA():
		h := sha512.Sum512([]byte(accessToken))
		sum = h[:]
	default:
		h := sha256.Sum256([]byte(accessToken))
		sum = h[:]
	}
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
