// Package testop is a small but real OpenID Provider (OP) served over
// loopback HTTP. opkssh's tests, the demo (examples/testop) and the
// benchmarks log in against it instead of Google or Keycloak.
//
// It is real in the sense that matters for tests: clients reach it only over
// HTTP, through their ordinary OIDC libraries, exactly as they would reach a
// production OP. It serves discovery, a JWKS with several keys, the
// authorization code flow with PKCE (S256) for public and confidential
// clients, the device flow, rotating refresh tokens (for the offline_access
// scope), signed ID tokens and userinfo. Nothing is mocked at the Go level,
// so a client that works against testop has exercised its HTTP, caching and
// verification code for real.
//
// Tests get a few hooks a production OP does not offer: a settable clock
// (SetNow), key rotation on demand (RotateKeys), the signing key itself to
// mint hostile tokens (SigningKey, SignIDToken), per-path and per-grant
// request counters (Requests, GrantRequests) to check caching and refreshes,
// and revocation of a user's refresh tokens (RevokeRefreshTokens). Options.Quirks
// switch on the habits of particular production OPs: an issuer with a trailing
// slash, tokens without kid, keys of unknown types in the JWKS, a clock ahead of
// the machine's, azp and nbf claims, Google's scheme-less iss, Microsoft Entra's
// tenants, a device grant that drops the nonce.
//
// What it deliberately lacks: TLS, login sessions (every /authorize asks
// again, unless auto-approve is on), consent and rate limiting. Passwords
// are compared in clear. Start refuses to listen on anything but a loopback
// address: testop must never be used in production.
package testop

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// User is an account of the test OP.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	AMR           []string
	// Extra claims are merged into the ID token and userinfo claims. Values
	// may be nested maps (e.g. realm_access: {roles: [admin]}). The named
	// fields above win over Extra, and protocol claims (iss, aud, exp, nonce…)
	// win over both.
	Extra map[string]any
	// Password is checked by the HTML login form; "" accepts any password.
	Password string
	// Tenant is the ID of the user's tenant in a multi-tenant OP (Quirks.Tenants); "" means
	// the first tenant. It must be "" if the OP has no tenants.
	Tenant string
}

// Client is an OAuth 2.0 client registered at the test OP.
type Client struct {
	ID string
	// Secret authenticates a confidential client (client_secret_basic or
	// client_secret_post). "" makes a public client, for which PKCE S256 is
	// mandatory.
	Secret string
	// RedirectURIs must match the redirect_uri exactly. If empty, any http
	// redirect URI on localhost, 127.0.0.1 or [::1] with any port and path
	// is allowed, as RFC 8252 recommends for native apps.
	RedirectURIs []string
}

// Options configure Start. The zero value is a usable OP with one public
// client "opkssh" and no users.
type Options struct {
	// Addr is the listen address, default "127.0.0.1:0". Its host must be a
	// loopback IP or "localhost"; anything else is refused.
	Addr  string
	Users []User
	// Clients registered at the OP; empty means one public client "opkssh".
	Clients []Client
	// AutoApprove is the subject or email of the user logged in at
	// /authorize without any form; "" shows an HTML login form.
	AutoApprove string
	// TokenLifetime is the lifetime of ID and access tokens, default 1h.
	TokenLifetime time.Duration
	// Now is the clock, default time.Now.
	Now func() time.Time
	// Keys is the number of keys published in the JWKS, default 2. The
	// newest key signs.
	Keys int
	// Alg is the signing algorithm: RS256 (default), RS384, RS512, PS256, PS384, PS512,
	// ES256, ES384, ES512 or EdDSA (Ed25519). The keys are of the matching type and curve.
	Alg string
	// Quirks imitate particular production OPs; the zero value imitates none.
	Quirks Quirks
	// Logf, if set, receives one line per request (method, path, status).
	// Query strings are not logged: they may carry codes.
	Logf func(format string, args ...any)
}

// Server is a running test OP. Its methods are safe for concurrent use.
type Server struct {
	base     string // http://IP:PORT, where the endpoints are
	issuer   string
	quirks   Quirks
	foreign  []json.RawMessage // Quirks.ForeignJWKs
	lifetime time.Duration
	alg      jwa.SignatureAlgorithm
	nkeys    int
	logf     func(format string, args ...any)
	clients  map[string]Client
	handler  http.Handler

	httpServer *http.Server
	served     chan struct{} // closed when the serving goroutine returns
	serveErr   error
	closeOnce  sync.Once
	closeErr   error

	mu          sync.Mutex
	now         func() time.Time
	users       []User
	autoApprove string
	keys        []*signingKey // oldest first; the last one signs
	codes       map[string]*authCode
	tokens      map[string]*accessToken
	device      deviceState              // device authorization grants (device.go)
	refresh     map[string]*refreshGrant // by refresh token (refresh.go)
	ci          ciJobs                   // CI jobs by request token (ci.go)
	requests    map[string]int
	grants      map[string]int // token requests by grant_type
	closed      bool
	inflight    int        // handlers running; Close waits for them
	idle        *sync.Cond // on mu, signalled when inflight drops to 0
}

// Start checks opts, listens on a loopback address and serves the OP in a
// goroutine until Close.
func Start(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testop: %w", err)
	}
	tcpAddr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcpAddr.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("testop: %s resolved to non-loopback address %s", addr, ln.Addr())
	}
	s.base = "http://" + tcpAddr.String()
	s.issuer = s.base + s.quirks.IssuerPath
	if len(s.quirks.Tenants) > 0 {
		s.issuer = s.base + "/" + EntraTemplate + "/v2.0"
	}
	s.httpServer = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		s.serveErr = s.httpServer.Serve(ln)
	}()
	return s, nil
}

func newServer(opts Options) (*Server, error) {
	s := &Server{
		lifetime:    opts.TokenLifetime,
		nkeys:       opts.Keys,
		logf:        opts.Logf,
		now:         opts.Now,
		quirks:      opts.Quirks,
		autoApprove: opts.AutoApprove,
		clients:     make(map[string]Client),
		codes:       make(map[string]*authCode),
		tokens:      make(map[string]*accessToken),
		refresh:     make(map[string]*refreshGrant),
		requests:    make(map[string]int),
		grants:      make(map[string]int),
	}
	s.idle = sync.NewCond(&s.mu)
	switch {
	case s.lifetime == 0:
		s.lifetime = time.Hour
	case s.lifetime < 0:
		return nil, fmt.Errorf("testop: negative TokenLifetime %v", s.lifetime)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.now = withOffset(s.now, s.quirks.ClockOffset)
	switch {
	case s.nkeys == 0:
		s.nkeys = 2
	case s.nkeys < 0:
		return nil, fmt.Errorf("testop: negative Keys %d", s.nkeys)
	}
	if opts.Alg == "" {
		s.alg = jwa.RS256()
	} else if a, ok := jwa.LookupSignatureAlgorithm(opts.Alg); ok && slices.Contains(Algs, opts.Alg) {
		s.alg = a
	} else {
		return nil, fmt.Errorf("testop: unsupported Alg %q (want one of %s)", opts.Alg, strings.Join(Algs, ", "))
	}
	if err := checkQuirks(s.quirks, opts.Users); err != nil {
		return nil, err
	}
	s.quirks.ExtraAudiences = slices.Clone(s.quirks.ExtraAudiences)
	s.quirks.Tenants = slices.Clone(s.quirks.Tenants)

	clients := opts.Clients
	if len(clients) == 0 {
		clients = []Client{{ID: "opkssh"}}
	}
	for _, c := range clients {
		if c.ID == "" {
			return nil, errors.New("testop: client with empty ID")
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("testop: client %q registered twice", c.ID)
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		s.clients[c.ID] = c
	}
	for _, u := range opts.Users {
		if u.Subject == "" {
			return nil, fmt.Errorf("testop: user %q has an empty Subject", u.Email)
		}
		if s.findUserLocked(u.Subject) >= 0 {
			return nil, fmt.Errorf("testop: user %q listed twice", u.Subject)
		}
		s.users = append(s.users, cloneUser(u))
	}

	keys, err := generateKeys(s.alg, s.nkeys)
	if err != nil {
		return nil, err
	}
	s.keys = keys
	if s.quirks.ForeignJWKs {
		if s.foreign, err = foreignJWKs(); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// checkLoopback refuses listen addresses that could expose the test OP
// beyond this machine. Host names other than "localhost" are refused rather
// than resolved.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("testop: bad listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("testop: refusing to listen on %q: the test OP only listens on loopback (e.g. 127.0.0.1:0)", addr)
}

// Issuer returns the issuer URL, e.g. "http://127.0.0.1:41234" (no trailing
// slash unless Quirks.IssuerPath has one). The host is the IP the listener is
// bound to, even if Addr said "localhost". A multi-tenant OP returns the issuer
// template "http://127.0.0.1:41234/{tenantid}/v2.0" (see Quirks.Tenants).
func (s *Server) Issuer() string { return s.issuer }

// URL returns the address the endpoints are under, e.g. "http://127.0.0.1:41234":
// the issuer without Quirks.IssuerPath.
func (s *Server) URL() string { return s.base }

// Handler returns the OP's HTTP handler (the one Start serves).
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the listener, closes open connections and waits for running
// handlers and the serving goroutine to return. Calling it again returns the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.httpServer.Close()
		<-s.served
		// http.Server.Close does not wait for running handlers; wait here so
		// that none calls Logf (often t.Logf) after Close returns.
		s.mu.Lock()
		s.closed = true
		for s.inflight > 0 {
			s.idle.Wait()
		}
		s.mu.Unlock()
		if s.closeErr == nil && !errors.Is(s.serveErr, http.ErrServerClosed) {
			s.closeErr = s.serveErr
		}
	})
	return s.closeErr
}

// SetAutoApprove switches to auto-approve mode for the user with that
// subject or email; "" switches to the HTML login form.
func (s *Server) SetAutoApprove(subjectOrEmail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoApprove = subjectOrEmail
}

// SetNow replaces the clock used for codes, tokens and their expiry.
// nil restores time.Now. Quirks.ClockOffset applies to the new clock too.
func (s *Server) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = withOffset(now, s.quirks.ClockOffset)
}

// AddUser adds a user, or replaces the user with the same Subject.
func (s *Server) AddUser(u User) {
	u = cloneUser(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.findUserLocked(u.Subject); i >= 0 {
		s.users[i] = u
		return
	}
	s.users = append(s.users, u)
}

// Requests returns how many requests have hit path (e.g. "/jwks") so far.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// SigningKey returns the key that currently signs ID tokens, for adversarial
// tests that mint their own tokens.
func (s *Server) SigningKey() (kid string, alg string, key crypto.Signer) {
	k := s.currentKey()
	return k.kid, k.alg.String(), k.signer
}

// SignIDToken signs arbitrary claims with the current key, as a compact JWS
// whose protected header has alg, kid (unless Quirks.NoKID) and typ "JWT".
// Nothing is added to or checked in claims.
func (s *Server) SignIDToken(claims map[string]any) (string, error) {
	return s.currentKey().signClaims(claims, s.quirks.NoKID)
}

func (s *Server) currentKey() *signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

// findUserLocked returns the index of the user whose subject or email is
// id, or -1. Subjects are matched first so an email that equals someone
// else's subject cannot shadow them.
func (s *Server) findUserLocked(id string) int {
	if id == "" {
		return -1
	}
	if i := slices.IndexFunc(s.users, func(u User) bool { return u.Subject == id }); i >= 0 {
		return i
	}
	return slices.IndexFunc(s.users, func(u User) bool { return u.Email == id })
}

func (s *Server) lookupUser(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findUserLocked(id)
	if i < 0 {
		return User{}, false
	}
	return s.users[i], true
}

func cloneUser(u User) User {
	u.Groups = slices.Clone(u.Groups)
	u.AMR = slices.Clone(u.AMR)
	u.Extra = maps.Clone(u.Extra)
	return u
}
