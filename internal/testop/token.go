package testop

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// accessToken is an issued opaque access token, good for /userinfo.
type accessToken struct {
	subject string
	expires time.Time
}

// tokenError is an error response of the token endpoint (RFC 6749 section
// 5.2).
type tokenError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func invalidRequest(desc string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_request", desc}
}

func invalidClient(desc string) *tokenError {
	return &tokenError{http.StatusUnauthorized, "invalid_client", desc}
}

func invalidGrant(desc string) *tokenError {
	return &tokenError{http.StatusBadRequest, "invalid_grant", desc}
}

// tokenResponse is a successful token response (RFC 6749 section 5.1,
// OpenID Connect Core section 3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	resp, terr := s.exchange(r)
	if terr != nil {
		if terr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="testop"`)
		}
		writeJSON(w, terr.status, terr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// exchange redeems an authorization code (RFC 6749 section 4.1.3), or
// hands the other grants to their handlers.
func (s *Server) exchange(r *http.Request) (*tokenResponse, *tokenError) {
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("request body does not parse: " + err.Error())
	}
	form := r.PostForm
	for name, values := range form {
		if len(values) > 1 {
			return nil, invalidRequest("parameter " + name + " is repeated")
		}
	}
	s.mu.Lock()
	s.grants[form.Get("grant_type")]++
	s.mu.Unlock()
	client, terr := s.authenticateClient(r, form)
	if terr != nil {
		return nil, terr
	}
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
	case GrantTypeDeviceCode:
		return s.deviceToken(form, client)
	case GrantTypeRefreshToken:
		return s.refreshToken(form, client)
	default:
		return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code, " + GrantTypeRefreshToken + " or " + GrantTypeDeviceCode + ", not " + gt}
	}
	if form.Get("code") == "" {
		return nil, invalidRequest("code is missing")
	}

	access := randomToken()
	code, user, now, terr := s.redeem(form, client, access)
	if terr != nil {
		return nil, terr
	}
	claims := s.idTokenClaims(user, code, now, access)
	idToken, err := s.currentKey().signClaims(claims, s.quirks.NoKID)
	if err != nil {
		return nil, &tokenError{http.StatusInternalServerError, "server_error", err.Error()}
	}
	return &tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.lifetime / time.Second),
		IDToken:      idToken,
		RefreshToken: code.refreshToken,
		Scope:        code.scope,
	}, nil
}

// redeem checks the code against everything it is bound to and, if all
// holds, records access as its access token and issues a refresh token when
// the scope asks for one. A code is burnt by its first presentation,
// successful or not; replaying it revokes the tokens it produced (RFC 6749
// section 4.1.2).
func (s *Server) redeem(form url.Values, client Client, access string) (*authCode, User, time.Time, *tokenError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	code := s.codes[form.Get("code")]
	switch {
	case code == nil:
		return nil, User{}, now, invalidGrant("unknown authorization code")
	case code.used:
		delete(s.tokens, code.accessToken)
		s.revokeRefreshLocked(code.refreshToken)
		return nil, User{}, now, invalidGrant("authorization code was already used")
	}
	code.used = true
	switch {
	case now.After(code.expires):
		return nil, User{}, now, invalidGrant("authorization code expired")
	case code.clientID != client.ID:
		return nil, User{}, now, invalidGrant("authorization code was issued to another client")
	case form.Get("redirect_uri") != code.redirectURI:
		return nil, User{}, now, invalidGrant("redirect_uri does not match the authorization request")
	}
	if terr := checkVerifier(code.challenge, form.Get("code_verifier")); terr != nil {
		return nil, User{}, now, terr
	}
	i := s.findUserLocked(code.subject)
	if i < 0 {
		return nil, User{}, now, invalidGrant("user " + code.subject + " no longer exists")
	}
	code.accessToken = access
	s.tokens[access] = &accessToken{subject: code.subject, expires: now.Add(s.lifetime)}
	code.refreshToken = s.issueRefreshLocked(refreshGrant{clientID: client.ID, subject: code.subject, scope: code.scope, authTime: code.authTime}, now)
	return code, s.users[i], now, nil
}

// authenticateClient implements client_secret_basic, client_secret_post
// and none (RFC 6749 section 2.3.1). A request may use only one method.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (Client, *tokenError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// The Basic credentials are form-urlencoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return Client{}, invalidClient("malformed Basic credentials")
		}
		if form.Has("client_secret") {
			return Client{}, invalidRequest("client authenticated by both Basic and client_secret")
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return Client{}, invalidRequest("client_id differs from the Basic credentials")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return Client{}, invalidClient("no client authentication and no client_id")
	}
	client, ok := s.clients[id]
	switch {
	case !ok:
		return Client{}, invalidClient("unknown client " + id)
	case client.Secret == "" && secret != "":
		return Client{}, invalidClient("public client " + id + " has no secret")
	case client.Secret != "" && secret == "":
		return Client{}, invalidClient("confidential client " + id + " must authenticate")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1:
		return Client{}, invalidClient("wrong secret for client " + id)
	}
	return client, nil
}

// pkceVerifierRE is the code_verifier syntax of RFC 7636 section 4.1.
var pkceVerifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// checkVerifier checks the PKCE code_verifier against the S256 challenge of
// the authorization request. A verifier without a challenge is refused too,
// to stop PKCE downgrade (RFC 9700 section 2.1.1).
func checkVerifier(challenge, verifier string) *tokenError {
	switch {
	case challenge == "" && verifier == "":
		return nil
	case challenge == "":
		return invalidGrant("code_verifier sent but the authorization request had no code_challenge")
	case verifier == "":
		return invalidGrant("code_verifier is missing")
	case !pkceVerifierRE.MatchString(verifier):
		return invalidGrant("code_verifier is malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
		return invalidGrant("code_verifier does not match code_challenge")
	}
	return nil
}

// validChallenge reports whether c looks like an S256 code challenge: the
// unpadded base64url encoding of 32 bytes.
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// randomToken returns 256 random bits, base64url-encoded, for codes and
// access tokens.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
