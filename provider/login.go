package provider

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/openpubkey/openpubkey/pktoken"
	"github.com/openpubkey/openpubkey/pktoken/clientinstance"
	"golang.org/x/oauth2"
)

// DefaultHTTPTimeout bounds every request to the OP during login.
const DefaultHTTPTimeout = 15 * time.Second

// LoginOptions control how the browser login is presented.
type LoginOptions struct {
	Signer crypto.Signer // the fresh user key the ID token will commit to
	Alg    string        // JOSE algorithm of Signer: "ES256", "EdDSA" or "RS256"
	// OpenBrowser is asked to open the login URL. nil, or an error from it, means the user must
	// open the printed URL themselves; the login keeps waiting either way.
	OpenBrowser func(url string) error
	// NoBrowser, if not nil, is called as soon as OpenBrowser fails, with its error. It returns
	// nil to keep waiting for the user to open the printed URL by hand, or the error that ends
	// the login at once (when nobody could: no terminal shows the URL or reads a pasted address).
	NoBrowser  func(error) error
	Status     io.Writer    // progress for the person waiting; io.Discard if nil
	HTTPClient *http.Client // for discovery and the token request; one with DefaultHTTPTimeout if nil
	// Paste, if set, is read line by line for the address the browser login ended on, for a
	// browser on another machine that cannot reach our loopback listener (see paste.go). The
	// device login does not use it.
	Paste io.Reader
	// QRWidth is how many terminal columns Status has for a QR code of the device login's
	// verification URL; 0 (or too few for the code) prints none. The browser login does not use it.
	QRWidth int
}

// LoginResult is what a successful login produced.
type LoginResult struct {
	PKToken *pktoken.PKToken
	Claims  IDClaims
	// RefreshToken is the OP's refresh token, "" if it issued none (see RefreshTokenPath).
	RefreshToken string
}

// IDClaims are the ID token claims the client shows the user and uses for the certificate.
type IDClaims struct {
	Issuer   string
	Subject  string
	Email    string
	IssuedAt time.Time
	Expiry   time.Time
}

// ErrNoNonce means the OP's ID token has no nonce claim although the login sent one: the token
// cannot commit to the key, so no PK token can be made from it.
var ErrNoNonce = errors.New("the OP's ID token has no nonce claim, although the login sent one; opkssh needs the OP to carry the nonce into the ID token, which binds the token to your key")

// ErrNoFreePort means none of the redirect URIs' ports could be bound.
var ErrNoFreePort = errors.New("no redirect URI port is free")

// Login runs the browser login and returns a PK token committing to opts.Signer's key. It blocks
// until the OP redirects back, an error arrives, or ctx ends (give it a deadline).
func Login(ctx context.Context, cfg Config, opts LoginOptions) (*LoginResult, error) {
	st, err := start(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	cfg, status, octx, op, cic, nonce := st.cfg, st.status, st.octx, st.op, st.cic, st.nonce

	ln, redirectURI, err := listenFirst(cfg.RedirectURIs)
	if err != nil {
		return nil, err
	}
	flow := &browserFlow{
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     op.Endpoint(),
			RedirectURL:  redirectURI,
			Scopes:       cfg.Scopes,
		},
		idVerifier: op.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		octx:       octx,
		nonce:      nonce,
		offline:    st.offline,
		state:      randomString(),
		pkce:       oauth2.GenerateVerifier(),
		done:       make(chan flowResult, 1),
	}
	if cfg.ClientSecret == "" {
		// A public client authenticates with PKCE alone; sending an empty Basic secret first
		// (oauth2's auto-detection) makes strict OPs log a failed client authentication.
		flow.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	cb, _ := url.Parse(redirectURI)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", flow.serveLogin)
	mux.HandleFunc("GET "+cb.EscapedPath(), flow.serveCallback)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	loginURL := "http://" + ln.Addr().String() + "/login"
	if cb.Hostname() == "localhost" {
		loginURL = "http://localhost:" + cb.Port() + "/login"
	}
	if opts.OpenBrowser != nil {
		fmt.Fprintf(status, "Opening your browser to log in at %s\n", cfg.Issuer)
		if err := opts.OpenBrowser(loginURL); err != nil {
			fmt.Fprintf(status, "Could not open a browser (%v).\n", err)
			if opts.NoBrowser != nil {
				if stop := opts.NoBrowser(err); stop != nil {
					select {
					case res := <-flow.done: // the opener finished the login and then failed
						if res.err != nil {
							return nil, res.err
						}
						return assemble(cic, opts, res)
					default:
						return nil, stop
					}
				}
			}
		}
		fmt.Fprintf(status, "If no browser window appeared, open this URL yourself:\n  %s\n", loginURL)
	} else {
		fmt.Fprintf(status, "Open this URL in a browser on this machine to log in at %s:\n  %s\n", cfg.Issuer, loginURL)
	}
	if opts.Paste != nil {
		pctx, stopPaste := context.WithCancel(ctx)
		defer stopPaste()
		fmt.Fprintf(status, "or this one in a browser on any machine:\n  %s\n%s\n", flow.authURL(), pasteHint)
		go flow.readPasted(pctx, opts.Paste, cb, status)
	}
	fmt.Fprintln(status, "Waiting for the login to finish (Ctrl-C to cancel)...")

	var res flowResult
	select {
	case res = <-flow.done:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errors.New("timed out waiting for the browser login; run the command again (use --timeout to wait longer)")
		}
		return nil, errors.New("login cancelled")
	}
	if res.err != nil {
		return nil, res.err
	}

	return assemble(cic, opts, res)
}

// assemble signs the client instance claims over the verified ID token and makes the PK token.
func assemble(cic *clientinstance.Claims, opts LoginOptions, res flowResult) (*LoginResult, error) {
	cicToken, err := cic.Sign(opts.Signer, opts.Alg, []byte(res.rawIDToken))
	if err != nil {
		return nil, fmt.Errorf("signing the client instance claims: %w", err)
	}
	pkt, err := pktoken.New([]byte(res.rawIDToken), cicToken)
	if err != nil {
		return nil, fmt.Errorf("assembling the PK token: %w", err)
	}
	return &LoginResult{PKToken: pkt, Claims: res.claims, RefreshToken: res.refreshToken}, nil
}

// flowStart is what both login flows begin with: the validated configuration, the OP's discovery
// document, and the client instance claims whose hash is the nonce.
type flowStart struct {
	cfg    Config
	status io.Writer
	octx   context.Context // carries the HTTP client for oauth2 and go-oidc
	op     *oidc.Provider
	cic    *clientinstance.Claims
	nonce  string
	// offline says ScopeOfflineAccess was added to cfg.Scopes, for error messages.
	offline bool
}

func start(ctx context.Context, cfg Config, opts LoginOptions) (*flowStart, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := &flowStart{cfg: cfg, status: opts.Status}
	if st.status == nil {
		st.status = io.Discard
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	var err error
	if st.cic, st.nonce, err = NewClientInstance(opts.Signer, opts.Alg); err != nil {
		return nil, err
	}
	st.octx = oidc.ClientContext(ctx, hc)
	if st.op, err = oidc.NewProvider(st.octx, cfg.Issuer); err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s failed: %w", cfg.Issuer, err)
	}
	st.cfg.Scopes, st.offline = withOfflineAccess(st.op, cfg)
	return st, nil
}

// NewClientInstance builds the client instance claims for the key and returns them with the
// commitment (their hash) that goes into the nonce.
func NewClientInstance(signer crypto.Signer, alg string) (*clientinstance.Claims, string, error) {
	if signer == nil {
		return nil, "", errors.New("no signing key")
	}
	pub, err := jwk.PublicKeyOf(signer.Public())
	if err != nil {
		return nil, "", fmt.Errorf("converting the key to a JWK: %w", err)
	}
	if err := pub.Set(jwk.AlgorithmKey, alg); err != nil {
		return nil, "", err
	}
	cic, err := clientinstance.NewClaims(pub, map[string]any{})
	if err != nil {
		return nil, "", err
	}
	h, err := cic.Hash()
	if err != nil {
		return nil, "", err
	}
	return cic, string(h), nil
}

// listenFirst binds the first redirect URI whose port is free. For "localhost" it binds the port
// on 127.0.0.1 and, where IPv6 exists, on ::1 as well: browsers may resolve localhost to either,
// and a port held by another program on one of them could otherwise receive our callback.
func listenFirst(uris []string) (net.Listener, string, error) {
	var errs []error
	for _, r := range uris {
		u, err := url.Parse(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ln, err := listenLoopback(u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return ln, r, nil
	}
	return nil, "", fmt.Errorf("%w (%v); close the program using them or pass --redirect-uri with another port registered at your OP", ErrNoFreePort, errors.Join(errs...))
}

func listenLoopback(u *url.URL) (net.Listener, error) {
	if !strings.EqualFold(u.Hostname(), "localhost") {
		return net.Listen("tcp", u.Host)
	}
	v4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", u.Port()))
	if err != nil {
		return nil, err
	}
	v6, err := net.Listen("tcp6", net.JoinHostPort("::1", u.Port()))
	if err != nil {
		if isAddrInUse(err) {
			v4.Close()
			return nil, fmt.Errorf("[::1]:%s is in use by another program: %w", u.Port(), err)
		}
		return v4, nil // no IPv6 loopback on this machine
	}
	return &dualListener{Listener: v4, other: v6}, nil
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// dualListener accepts on two listeners (127.0.0.1 and ::1) as one.
type dualListener struct {
	net.Listener
	other net.Listener
	once  sync.Once
	conns chan acceptResult
}

type acceptResult struct {
	c   net.Conn
	err error
}

func (d *dualListener) Accept() (net.Conn, error) {
	d.once.Do(func() {
		d.conns = make(chan acceptResult, 2) // room for both final errors after Close
		for _, l := range []net.Listener{d.Listener, d.other} {
			go func() {
				for {
					c, err := l.Accept()
					d.conns <- acceptResult{c, err}
					if err != nil {
						return
					}
				}
			}()
		}
	})
	r := <-d.conns
	return r.c, r.err
}

func (d *dualListener) Close() error {
	err := d.Listener.Close()
	d.other.Close()
	return err
}

type flowResult struct {
	rawIDToken   string
	refreshToken string
	claims       IDClaims
	err          error
}

// browserFlow is the loopback side of one authorization-code flow.
type browserFlow struct {
	oauth      oauth2.Config
	idVerifier *oidc.IDTokenVerifier
	octx       context.Context
	nonce      string
	offline    bool // offline_access was asked for
	state      string
	pkce       string
	once       sync.Once
	done       chan flowResult
}

func (f *browserFlow) serveLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, f.authURL(), http.StatusFound)
}

// authURL is the OP's authorization request of this flow.
func (f *browserFlow) authURL() string {
	return f.oauth.AuthCodeURL(f.state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.pkce))
}

func (f *browserFlow) serveCallback(w http.ResponseWriter, r *http.Request) {
	switch err := f.handleResponse(r.URL.Query()); {
	case errors.Is(err, errStaleState):
		// Not our flow (a stale tab, or someone else's request): ignore it and keep waiting.
		page(w, http.StatusBadRequest, "This login link is stale", "Start the login again from your terminal.")
	case errors.Is(err, errOPRefused):
		page(w, http.StatusForbidden, "Login failed", err.Error())
	case err != nil:
		page(w, http.StatusBadGateway, "Login failed", err.Error())
	default:
		page(w, http.StatusOK, "You are logged in", "opkssh received your login. You may close this window and return to the terminal.")
	}
}

// errStaleState means an authorization response carried another flow's state: it is ignored.
var errStaleState = errors.New("this address belongs to another login (its state does not match)")

// errOPRefused wraps an error response (error=…) from the OP.
var errOPRefused = errors.New("the OP refused the login")

// handleResponse takes the OP's authorization response (the redirect URI's query), whether the
// browser brought it to the loopback listener or the user pasted it. Unless its state is not
// ours, it finishes the flow with the ID token or the error, which it also returns.
func (f *browserFlow) handleResponse(q url.Values) error {
	if q.Get("state") != f.state {
		return errStaleState
	}
	if e := q.Get("error"); e != "" {
		err := fmt.Errorf("%w: %s", errOPRefused, e)
		if d := q.Get("error_description"); d != "" {
			err = fmt.Errorf("%w: %s: %s", errOPRefused, e, d)
		}
		err = offlineHint(err, f.offline)
		f.finish(flowResult{err: err})
		return err
	}
	res := f.exchange(q.Get("code"))
	f.finish(res)
	return res.err
}

func (f *browserFlow) exchange(code string) flowResult {
	if code == "" {
		return flowResult{err: errors.New("the OP redirected back without an authorization code")}
	}
	tok, err := f.oauth.Exchange(f.octx, code, oauth2.VerifierOption(f.pkce))
	if err != nil {
		return flowResult{err: offlineHint(fmt.Errorf("exchanging the authorization code: %w", err), f.offline)}
	}
	return verifyIDToken(f.octx, f.idVerifier, tok, f.nonce)
}

// verifyIDToken checks the token response's ID token: the OP's signature, issuer, audience,
// expiry, and that its nonce is ours, i.e. that it commits to our key.
func verifyIDToken(ctx context.Context, v *oidc.IDTokenVerifier, tok *oauth2.Token, nonce string) flowResult {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return flowResult{err: errors.New("the OP's token response has no id_token; is the \"openid\" scope allowed for this client?")}
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return flowResult{err: fmt.Errorf("the OP's ID token did not verify: %w", err)}
	}
	if idt.Nonce == "" {
		return flowResult{err: ErrNoNonce}
	}
	if idt.Nonce != nonce {
		return flowResult{err: errors.New("the ID token's nonce is not the one we sent; the response was replayed or belongs to another login")}
	}
	var c struct {
		Email string `json:"email"`
	}
	if err := idt.Claims(&c); err != nil {
		return flowResult{err: fmt.Errorf("decoding ID token claims: %w", err)}
	}
	return flowResult{rawIDToken: raw, refreshToken: tok.RefreshToken, claims: IDClaims{
		Issuer: idt.Issuer, Subject: idt.Subject, Email: c.Email, IssuedAt: idt.IssuedAt, Expiry: idt.Expiry,
	}}
}

func (f *browserFlow) finish(r flowResult) {
	f.once.Do(func() { f.done <- r })
}

// pageTmpl is parsed on first use: every package's init runs in every opkssh process, including
// the verify that sshd starts for each login.
var pageTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>opkssh: {{.Title}}</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:4em auto"><h1>{{.Title}}</h1><p>{{.Body}}</p></body></html>
`))
})

func page(w http.ResponseWriter, code int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	pageTmpl().Execute(w, struct{ Title, Body string }{title, body})
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
