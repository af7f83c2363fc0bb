package testop

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The device authorization grant (RFC 8628), for logins on machines without a browser: the
// client asks /device_authorization for a device code and a short user code, the user enters the
// user code at /device (or a test calls ApproveDevice), and the client polls /token meanwhile.
//
// Like the authorization endpoint, /device_authorization accepts a nonce parameter and puts it in
// the ID token: RFC 8628 does not define one, but OpenPubkey needs the ID token to commit to the
// client's key, and OPs such as Keycloak carry it through. Others (Dex, Zitadel) drop it:
// Quirks.DeviceDropsNonce.

// GrantTypeDeviceCode is the grant_type of the device access token request.
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

const (
	deviceCodeLifetime = 10 * time.Minute
	// defaultDeviceInterval is the polling interval the OP asks for, in whole seconds as the
	// protocol counts them; short, so that tests do not wait.
	defaultDeviceInterval = time.Second
	userCodeAlphabet      = "BCDFGHJKLMNPQRSTVWXZ" // no vowels: no words; RFC 8628 section 6.1
)

// deviceGrant is a device authorization waiting for, or given, the user's approval.
type deviceGrant struct {
	clientID string
	scope    string
	nonce    string
	userCode string // normalized: 8 letters, no dash
	expires  time.Time
	interval time.Duration
	lastPoll time.Time // wall clock, for slow_down
	subject  string    // set by approval
	authTime time.Time
	denied   bool
}

// deviceState holds the grants by device code. It lives in Server, guarded by Server.mu.
type deviceState struct {
	grants   map[string]*deviceGrant
	interval time.Duration // 0: defaultDeviceInterval
}

// deviceAuthResponse is RFC 8628 section 3.2.
type deviceAuthResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// SetDeviceInterval sets the polling interval new device authorizations ask for (rounded up to
// whole seconds; at least one).
func (s *Server) SetDeviceInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device.interval = max(d.Round(time.Second), time.Second)
}

// PendingUserCodes returns the user codes (formatted XXXX-XXXX) of the device authorizations that
// are neither approved, denied nor expired, oldest first.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var pending []*deviceGrant
	for _, g := range s.device.grants {
		if g.subject == "" && !g.denied && now.Before(g.expires) {
			pending = append(pending, g)
		}
	}
	slices.SortFunc(pending, func(a, b *deviceGrant) int { return a.expires.Compare(b.expires) })
	codes := make([]string, len(pending))
	for i, g := range pending {
		codes[i] = formatUserCode(g.userCode)
	}
	return codes
}

// ApproveDevice logs the user with that subject or email in for the device authorization with
// userCode, as if they had entered the code at /device.
func (s *Server) ApproveDevice(userCode, subjectOrEmail string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findUserLocked(subjectOrEmail)
	if i < 0 {
		return errors.New("testop: no user " + subjectOrEmail)
	}
	g, err := s.pendingGrantLocked(userCode)
	if err != nil {
		return err
	}
	g.subject, g.authTime = s.users[i].Subject, s.now()
	return nil
}

// DenyDevice refuses the device authorization with userCode, as a user pressing "deny" would.
func (s *Server) DenyDevice(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.pendingGrantLocked(userCode)
	if err != nil {
		return err
	}
	g.denied = true
	return nil
}

func (s *Server) pendingGrantLocked(userCode string) (*deviceGrant, error) {
	code := normalizeUserCode(userCode)
	now := s.now()
	for _, g := range s.device.grants {
		if g.userCode == code && now.Before(g.expires) {
			if g.subject != "" || g.denied {
				return nil, errors.New("testop: user code " + userCode + " was already used")
			}
			return g, nil
		}
	}
	return nil, errors.New("testop: unknown or expired user code " + userCode)
}

// handleDeviceAuthorization is RFC 8628 section 3.1. In auto-approve mode the grant is approved
// at once for the auto-approve user.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("request body does not parse: "+err.Error()))
		return
	}
	form := r.PostForm
	for name, values := range form {
		if len(values) > 1 {
			writeJSON(w, http.StatusBadRequest, invalidRequest("parameter "+name+" is repeated"))
			return
		}
	}
	client, terr := s.authenticateClient(r, form)
	if terr != nil {
		writeJSON(w, terr.status, terr)
		return
	}
	scope := form.Get("scope")
	if !slices.Contains(strings.Fields(scope), "openid") {
		writeJSON(w, http.StatusBadRequest, &tokenError{http.StatusBadRequest, "invalid_scope", "scope must contain openid"})
		return
	}
	deviceCode, userCode := randomToken(), newUserCode()
	s.mu.Lock()
	now := s.now()
	if s.device.grants == nil {
		s.device.grants = make(map[string]*deviceGrant)
	}
	for k, g := range s.device.grants {
		if now.After(g.expires) {
			delete(s.device.grants, k)
		}
	}
	interval := s.device.interval
	if interval == 0 {
		interval = defaultDeviceInterval
	}
	g := &deviceGrant{clientID: client.ID, scope: scope, nonce: form.Get("nonce"), userCode: userCode,
		expires: now.Add(deviceCodeLifetime), interval: interval}
	if s.quirks.DeviceDropsNonce {
		g.nonce = ""
	}
	if s.autoApprove != "" {
		if i := s.findUserLocked(s.autoApprove); i >= 0 {
			g.subject, g.authTime = s.users[i].Subject, now
		} else {
			g.denied = true
		}
	}
	s.device.grants[deviceCode] = g
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, deviceAuthResponse{
		DeviceCode:              deviceCode,
		UserCode:                formatUserCode(userCode),
		VerificationURI:         s.base + "/device",
		VerificationURIComplete: s.base + "/device?user_code=" + formatUserCode(userCode),
		ExpiresIn:               int64(deviceCodeLifetime / time.Second),
		Interval:                int64(interval / time.Second),
	})
}

// deviceToken answers a device access token request (RFC 8628 section 3.4 and 3.5).
func (s *Server) deviceToken(form map[string][]string, client Client) (*tokenResponse, *tokenError) {
	deviceCode := ""
	if v := form["device_code"]; len(v) == 1 {
		deviceCode = v[0]
	}
	if deviceCode == "" {
		return nil, invalidRequest("device_code is missing")
	}
	pending := func(code, desc string) *tokenError { return &tokenError{http.StatusBadRequest, code, desc} }
	access := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g := s.device.grants[deviceCode]
	switch {
	case g == nil:
		return nil, invalidGrant("unknown device code")
	case g.clientID != client.ID:
		return nil, invalidGrant("device code was issued to another client")
	case now.After(g.expires):
		delete(s.device.grants, deviceCode)
		return nil, pending("expired_token", "the device code expired before the user approved it")
	case g.denied:
		delete(s.device.grants, deviceCode)
		return nil, pending("access_denied", "the user denied the device login")
	}
	wall := time.Now()
	// Allow some jitter: a client polling at exactly the interval must not be told to slow down.
	tooFast := !g.lastPoll.IsZero() && wall.Sub(g.lastPoll) < g.interval*4/5
	g.lastPoll = wall
	if tooFast {
		g.interval += 5 * time.Second // RFC 8628 section 3.5
		return nil, pending("slow_down", "polling faster than the interval")
	}
	if g.subject == "" {
		return nil, pending("authorization_pending", "the user has not entered the code yet")
	}
	i := s.findUserLocked(g.subject)
	if i < 0 {
		return nil, invalidGrant("user " + g.subject + " no longer exists")
	}
	delete(s.device.grants, deviceCode) // a device code yields one token response
	s.tokens[access] = &accessToken{subject: g.subject, expires: now.Add(s.lifetime)}
	refresh := s.issueRefreshLocked(refreshGrant{clientID: client.ID, subject: g.subject, scope: g.scope, authTime: g.authTime}, now)
	claims := s.idTokenClaims(s.users[i], &authCode{clientID: client.ID, nonce: g.nonce, authTime: g.authTime}, now, access)
	idToken, err := s.keys[len(s.keys)-1].signClaims(claims, s.quirks.NoKID)
	if err != nil {
		return nil, &tokenError{http.StatusInternalServerError, "server_error", err.Error()}
	}
	return &tokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(s.lifetime / time.Second), IDToken: idToken, RefreshToken: refresh, Scope: g.scope}, nil
}

// The verification page: enter the user code, a username and a password.
var devicePage = template.Must(template.New("device").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Device login - testop</title></head>
<body>
<h1>Log a device in to {{.Issuer}}</h1>
{{if .Message}}<p id="message" role="alert">{{.Message}}</p>
{{end}}<form id="device-form" method="post" action="/device">
<p><label for="user_code">Code shown on the device</label> <input id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off"></p>
<p><label for="username">Email or subject</label> <input id="username" name="username" autocomplete="username"></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button id="approve" name="action" value="approve" type="submit">Approve</button> <button id="deny" name="action" value="deny" type="submit">Deny</button></p>
</form>
</body></html>
`))

func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	data := map[string]string{"Issuer": s.issuer, "UserCode": r.URL.Query().Get("user_code")}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			data["Message"] = "The form could not be parsed."
			devicePage.Execute(w, data)
			return
		}
		code := r.PostForm.Get("user_code")
		data["UserCode"] = code
		var err error
		if r.PostForm.Get("action") == "deny" {
			err = s.DenyDevice(code)
			data["Message"] = "Denied. The device will not be logged in."
		} else if user, ok := s.checkPassword(r.PostForm.Get("username"), r.PostForm.Get("password")); !ok {
			err = errors.New("wrong username or password")
		} else {
			err = s.ApproveDevice(code, user.Subject)
			data["Message"] = "Approved. Return to your device."
		}
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			data["Message"] = strings.TrimPrefix(err.Error(), "testop: ")
		}
	}
	devicePage.Execute(w, data)
}

// checkPassword looks the user up and checks the password as the login form does.
func (s *Server) checkPassword(username, password string) (User, bool) {
	user, ok := s.lookupUser(username)
	if !ok || user.Password != "" && subtle.ConstantTimeCompare([]byte(password), []byte(user.Password)) != 1 {
		return User{}, false
	}
	return user, true
}

func newUserCode() string {
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)] // 256 % 20 bias: fine for a test OP
	}
	return string(b)
}

func formatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// normalizeUserCode accepts what people type: lower case, with or without the dash or spaces.
func normalizeUserCode(c string) string {
	return strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(c))
}
