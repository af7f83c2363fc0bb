package testop

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// codeLifetime is how long an authorization code can be redeemed.
const codeLifetime = 60 * time.Second

// authParams are the authorization request parameters the OP understands,
// in the order they are carried through the login form.
var authParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt",
}

// authRequest is a validated authorization request (RFC 6749 section 4.1.1,
// RFC 7636 section 4.3, OpenID Connect Core section 3.1.2.1).
type authRequest struct {
	params      url.Values // the authParams that were sent, for the form
	client      Client
	redirectURI string
	scope       string
	state       string
	nonce       string
	challenge   string // S256 code challenge, "" if none
	prompt      string
}

// authCode is an issued authorization code and what it is bound to.
type authCode struct {
	clientID     string
	redirectURI  string
	scope        string
	nonce        string
	challenge    string
	subject      string
	authTime     time.Time
	expires      time.Time
	used         bool
	accessToken  string // issued when redeemed; revoked if the code is replayed
	refreshToken string // likewise, when the scope has offline_access
}

// authError is an error of the authorization endpoint. If redirect is
// false, the redirect URI cannot be trusted and the error is shown to the
// user instead of being sent to the client.
type authError struct {
	redirect    bool
	code        string // RFC 6749 section 4.1.2.1 error code
	description string
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	values := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			s.showError(w, "The request body could not be parsed: "+err.Error())
			return
		}
		values = r.PostForm
	}
	req, aerr := s.parseAuthRequest(values)
	if aerr != nil {
		s.failAuth(w, r, req, aerr)
		return
	}

	s.mu.Lock()
	auto := s.autoApprove
	s.mu.Unlock()
	if auto != "" {
		user, ok := s.lookupUser(auto)
		if !ok {
			s.failAuth(w, r, req, &authError{redirect: true, code: "access_denied",
				description: "auto-approve user " + auto + " does not exist"})
			return
		}
		s.approve(w, r, req, user)
		return
	}
	if req.prompt == "none" {
		s.failAuth(w, r, req, &authError{redirect: true, code: "login_required",
			description: "prompt=none but the test OP is in login form mode"})
		return
	}
	if r.Method != http.MethodPost || !values.Has("username") {
		s.showLogin(w, req, "", "")
		return
	}
	username := values.Get("username")
	user, ok := s.lookupUser(username)
	if !ok || (user.Password != "" && subtle.ConstantTimeCompare([]byte(values.Get("password")), []byte(user.Password)) != 1) {
		s.showLogin(w, req, username, "Wrong username or password.")
		return
	}
	s.approve(w, r, req, user)
}

// parseAuthRequest validates an authorization request. The client and the
// redirect URI are checked first: until both are known good, errors must
// not be redirected (RFC 6749 section 4.1.2.1).
func (s *Server) parseAuthRequest(v url.Values) (*authRequest, *authError) {
	for _, name := range authParams {
		if len(v[name]) > 1 {
			return nil, &authError{code: "invalid_request", description: "parameter " + name + " is repeated"}
		}
	}
	client, ok := s.clients[v.Get("client_id")]
	if !ok {
		return nil, &authError{code: "invalid_request", description: "unknown client_id " + strconv.Quote(v.Get("client_id"))}
	}
	redirectURI := v.Get("redirect_uri")
	if !redirectAllowed(client, redirectURI) {
		return nil, &authError{code: "invalid_request", description: "redirect_uri " + strconv.Quote(redirectURI) + " is not registered for client " + client.ID}
	}
	req := &authRequest{
		params:      url.Values{},
		client:      client,
		redirectURI: redirectURI,
		scope:       v.Get("scope"),
		state:       v.Get("state"),
		nonce:       v.Get("nonce"),
		challenge:   v.Get("code_challenge"),
		prompt:      v.Get("prompt"),
	}
	for _, name := range authParams {
		if v.Has(name) {
			req.params.Set(name, v.Get(name))
		}
	}
	fail := func(code, description string) (*authRequest, *authError) {
		return req, &authError{redirect: true, code: code, description: description}
	}
	method := v.Get("code_challenge_method")
	switch {
	case v.Get("response_type") != "code":
		return fail("unsupported_response_type", "response_type must be code")
	case !slices.Contains(strings.Fields(req.scope), "openid"):
		return fail("invalid_scope", "scope must contain openid")
	case req.challenge == "" && client.Secret == "":
		return fail("invalid_request", "code_challenge (PKCE) is required for public clients")
	case req.challenge == "" && method != "":
		return fail("invalid_request", "code_challenge_method without code_challenge")
	case req.challenge != "" && method != "S256":
		return fail("invalid_request", "code_challenge_method must be S256")
	case req.challenge != "" && !validChallenge(req.challenge):
		return fail("invalid_request", "code_challenge must be a base64url SHA-256 hash (43 characters)")
	case req.prompt != "" && req.prompt != "none" && req.prompt != "login" && req.prompt != "consent" && req.prompt != "select_account":
		return fail("invalid_request", "unknown prompt value")
	}
	return req, nil
}

// redirectAllowed implements Client.RedirectURIs: exact match, or any
// loopback http URI when none are registered.
func redirectAllowed(c Client, uri string) bool {
	if uri == "" {
		return false
	}
	if len(c.RedirectURIs) > 0 {
		return slices.Contains(c.RedirectURIs, uri)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// approve issues a code for user and sends the browser back to the client.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, req *authRequest, user User) {
	code := randomToken()
	s.mu.Lock()
	now := s.now()
	s.pruneLocked(now)
	s.codes[code] = &authCode{
		clientID:    req.client.ID,
		redirectURI: req.redirectURI,
		scope:       req.scope,
		nonce:       req.nonce,
		challenge:   req.challenge,
		subject:     user.Subject,
		authTime:    now,
		expires:     now.Add(codeLifetime),
	}
	s.mu.Unlock()
	s.redirect(w, r, req, url.Values{"code": {code}}, s.userIssuer(user))
}

// pruneLocked forgets codes and access tokens that have expired, so a long
// running demo OP does not grow without bound.
func (s *Server) pruneLocked(now time.Time) {
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, k)
		}
	}
}

func (s *Server) failAuth(w http.ResponseWriter, r *http.Request, req *authRequest, aerr *authError) {
	if !aerr.redirect || req == nil {
		s.showError(w, aerr.description)
		return
	}
	s.redirect(w, r, req, url.Values{"error": {aerr.code}, "error_description": {aerr.description}}, s.issuer)
}

// redirect sends an authorization response to the client's redirect URI,
// keeping any query the URI already has (RFC 6749 section 3.1.2), with iss (RFC 9207).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, req *authRequest, params url.Values, iss string) {
	u, err := url.Parse(req.redirectURI)
	if err != nil {
		s.showError(w, "redirect_uri does not parse: "+err.Error())
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	q.Set("iss", iss)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// The login form. Browse parses this markup: keep the form id, the input
// names and the error paragraph's id in step with loginFormRE and friends.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - testop</title></head>
<body>
<h1>Sign in to {{.Issuer}}</h1>
<p>Client <code>{{.ClientID}}</code> asks who you are.</p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>
{{end}}<form id="login-form" method="post" action="/authorize">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<p><label for="username">Email or subject</label> <input id="username" name="username" value="{{.Username}}" autocomplete="username" autofocus></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" value="" autocomplete="current-password"></p>
<p><button id="login" type="submit">Sign in</button></p>
</form>
</body></html>
`))

type hiddenField struct{ Name, Value string }

func (s *Server) showLogin(w http.ResponseWriter, req *authRequest, username, message string) {
	var hidden []hiddenField
	for _, name := range authParams {
		if req.params.Has(name) {
			hidden = append(hidden, hiddenField{name, req.params.Get(name)})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	loginPage.Execute(w, map[string]any{
		"Issuer":   s.issuer,
		"ClientID": req.client.ID,
		"Error":    message,
		"Hidden":   hidden,
		"Username": username,
	})
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error - testop</title></head>
<body>
<h1>Invalid authorization request</h1>
<p id="error">{{.}}</p>
<p>The client that sent you here is misconfigured; you were not redirected back to it.</p>
</body></html>
`))

// showError answers a request whose client or redirect URI cannot be
// trusted: the user sees the problem, the client hears nothing.
func (s *Server) showError(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	errorPage.Execute(w, message)
}
