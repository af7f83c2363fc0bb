package verifier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/opkssh-team/opkssh/internal/idtoken"
	"github.com/opkssh-team/opkssh/internal/trustfile"
	"github.com/opkssh-team/opkssh/policy"
)

// KeySource supplies a provider's public keys. kid is the key the token names, so that a caching
// source can refetch when it does not know it (the OP rotated).
type KeySource interface {
	Keys(ctx context.Context, p *policy.Provider, kid string) (jwk.Set, KeyInfo, error)
}

// KeyInfo says where a key set came from, for the decision log.
type KeyInfo struct {
	Source    string    // one of the KeySource* constants
	FetchedAt time.Time // when the keys were fetched from the OP (zero for pinned keys)
	Note      string    // a problem worth an administrator's attention, e.g. an unusable cache directory
}

// Key sources named in the decision log.
const (
	KeySourcePinned  = "pinned"  // the provider's jwks_file
	KeySourceNetwork = "network" // fetched from the OP during this decision
	KeySourceCache   = "cache"   // a fresh cache entry
	KeySourceStale   = "stale"   // a cache entry past its freshness, used because the OP is unreachable
)

// DefaultFetchTimeout bounds each HTTP request made on the verify path.
const DefaultFetchTimeout = 5 * time.Second

// maxDocument bounds discovery documents and JWKS, which come from the network.
const maxDocument = 1 << 20

// Fetcher gets keys from the network (OIDC discovery, then jwks_uri) or, when the provider pins
// them with jwks_file, from that file without any network access.
//
// jwks_file and ca_file decide whose keys verify trusts, so both are read with trustfile's rules:
// the file and every directory above it owned by root (or one of TrustedUIDs) and writable by
// nobody else. A file that fails them breaks its provider (ErrUnsafeFile), never the others.
type Fetcher struct {
	Timeout     time.Duration // per request; DefaultFetchTimeout when zero
	TrustedUIDs []int         // owners of jwks_file and ca_file trusted besides root
}

// ErrUnsafeFile is wrapped by the errors about a jwks_file or ca_file that others could write.
var ErrUnsafeFile = trustfile.ErrUnsafe

// Keys implements KeySource without any caching: pinned keys, or two requests to the OP.
func (f Fetcher) Keys(ctx context.Context, p *policy.Provider, _ string) (jwk.Set, KeyInfo, error) {
	if p.JWKSFile != "" {
		set, err := f.pinnedKeys(p)
		return set, KeyInfo{Source: KeySourcePinned}, err
	}
	doc, err := f.Fetch(ctx, p)
	if err != nil {
		return nil, KeyInfo{}, err
	}
	set, err := parseJWKS(doc.JWKS)
	return set, KeyInfo{Source: KeySourceNetwork, FetchedAt: doc.FetchedAt}, err
}

func (f Fetcher) pinnedKeys(p *policy.Provider) (jwk.Set, error) {
	data, err := trustfile.Read(p.JWKSFile, maxDocument, trustfile.Rules{TrustedUIDs: f.TrustedUIDs, What: "jwks_file"})
	if err != nil {
		return nil, err
	}
	set, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("pinned jwks_file %s: %w", p.JWKSFile, err)
	}
	return set, nil
}

// Fetched is what one round of discovery plus JWKS download returned.
type Fetched struct {
	Discovery json.RawMessage
	JWKSURI   string
	JWKS      json.RawMessage
	FetchedAt time.Time
	// MaxAge is the freshness the JWKS response's Cache-Control asks for: max-age, or 0 for
	// no-store, no-cache and max-age=0; -1 when the header says nothing about it.
	MaxAge time.Duration
	// ServerDate is the JWKS response's Date header (the OP's clock), zero if absent.
	ServerDate time.Time
}

// Fetch runs discovery and downloads the JWKS document of p.
func (f Fetcher) Fetch(ctx context.Context, p *policy.Provider) (*Fetched, error) {
	hc, err := f.client(p)
	if err != nil {
		return nil, err
	}
	disc, _, err := get(ctx, hc, DiscoveryURL(p.Issuer))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(disc, &doc); err != nil {
		return nil, &FetchError{Kind: FetchBadDocument, Err: fmt.Errorf("discovery document of %s: %w", p.Issuer, err)}
	}
	if doc.Issuer != p.Issuer {
		return nil, &FetchError{Kind: FetchIssuerMismatch, Err: fmt.Errorf("discovery document names issuer %q, but the policy says %q; they must be equal character for character (a trailing '/' counts): copy the OP's value into the policy", clip(doc.Issuer), p.Issuer)}
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || !(u.Scheme == "https" || (u.Scheme == "http" && idtoken.IsLoopbackHost(u.Hostname()))) {
		return nil, &FetchError{Kind: FetchBadDocument, Err: fmt.Errorf("discovery document of %s has an unusable jwks_uri %q", p.Issuer, clip(doc.JWKSURI))}
	}
	data, hdr, err := get(ctx, hc, doc.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if _, err := parseJWKS(data); err != nil {
		return nil, &FetchError{Kind: FetchBadDocument, Err: fmt.Errorf("JWKS at %s: %w", doc.JWKSURI, err)}
	}
	date, _ := http.ParseTime(hdr.Get("Date"))
	return &Fetched{Discovery: disc, JWKSURI: doc.JWKSURI, JWKS: data, FetchedAt: time.Now(), MaxAge: maxAge(hdr.Get("Cache-Control")), ServerDate: date}, nil
}

// DiscoveryURL is where an issuer's discovery document is: OpenID Connect Discovery 1.0 §4 drops
// a terminating '/' of the issuer before appending the well-known path, so that Auth0's
// https://TENANT.auth0.com/ is asked at https://TENANT.auth0.com/.well-known/openid-configuration.
// The token's iss is still compared with the issuer exactly.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// maxAge reads a Cache-Control header: max-age=N gives N seconds; no-store, no-cache or max-age=0
// (the OP asks not to keep the keys) give 0; a header without any of these gives -1. The cache
// turns 0 into its minimum freshness and -1 into its default (Cache.ttl).
func maxAge(cc string) time.Duration {
	age := time.Duration(-1)
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n >= 0 {
				age = time.Duration(min(n, 1<<32)) * time.Second
			}
		}
	}
	return age
}

func (f Fetcher) client(p *policy.Provider) (*http.Client, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// sshd starts verify with an almost empty environment: no proxy variables to honour.
	tr.Proxy = nil
	if p.CAFile != "" {
		pool, err := f.caPool(p)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr, CheckRedirect: refuseRedirect}, nil
}

// caPool is the system roots plus the provider's ca_file.
func (f Fetcher) caPool(p *policy.Provider) (*x509.CertPool, error) {
	pem, err := trustfile.Read(p.CAFile, maxDocument, trustfile.Rules{TrustedUIDs: f.TrustedUIDs, What: "ca_file"})
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", p.CAFile)
	}
	return pool, nil
}

// CheckFiles reads a provider's jwks_file and ca_file as verify does, for doctor and policy check:
// nil when both are absent or usable.
func (f Fetcher) CheckFiles(p *policy.Provider) error {
	var errs []error
	if p.JWKSFile != "" {
		if _, err := f.pinnedKeys(p); err != nil {
			errs = append(errs, err)
		}
	}
	if p.CAFile != "" {
		if _, err := f.caPool(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FetchError says which step of a key fetch failed, so that doctor and the decision log can name
// the real problem instead of calling every failure "unreachable".
type FetchError struct {
	Kind string // one of the Fetch* constants
	Err  error
}

// Kinds of FetchError.
const (
	FetchUnreachable    = "unreachable"     // no HTTP answer: DNS, connection, TLS, timeout
	FetchHTTPStatus     = "http_status"     // an answer other than 200 (a wrong issuer path gives 404)
	FetchRedirect       = "redirect"        // the OP answered with a redirect, which verify does not follow
	FetchIssuerMismatch = "issuer_mismatch" // the discovery document names another issuer
	FetchBadDocument    = "bad_document"    // a document that does not parse or is too large
)

func (e *FetchError) Error() string { return e.Err.Error() }
func (e *FetchError) Unwrap() error { return e.Err }

// FetchErrorKind returns the kind of a fetch failure, or "" when err is not one.
func FetchErrorKind(err error) string {
	var fe *FetchError
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return ""
}

// errRedirect stops the HTTP client at the first redirect: a discovery or JWKS request that is
// sent elsewhere could be sent from https to http, or to a host the policy never named.
var errRedirect = errors.New("redirect refused")

func refuseRedirect(*http.Request, []*http.Request) error { return errRedirect }

func get(ctx context.Context, hc *http.Client, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, &FetchError{Kind: FetchBadDocument, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if errors.Is(err, errRedirect) && resp != nil {
		resp.Body.Close()
		return nil, nil, &FetchError{Kind: FetchRedirect, Err: fmt.Errorf("GET %s: the OP redirects to %q, which verify does not follow; put the final URL in the policy's issuer", u, clip(resp.Header.Get("Location")))}
	}
	if err != nil {
		return nil, nil, &FetchError{Kind: FetchUnreachable, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &FetchError{Kind: FetchHTTPStatus, Err: fmt.Errorf("GET %s: HTTP %s", u, resp.Status)}
	}
	if resp.ContentLength > maxDocument {
		return nil, nil, &FetchError{Kind: FetchBadDocument, Err: fmt.Errorf("GET %s: response of %d bytes is larger than %d", u, resp.ContentLength, maxDocument)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, nil, &FetchError{Kind: FetchUnreachable, Err: err}
	}
	if len(data) > maxDocument {
		return nil, nil, &FetchError{Kind: FetchBadDocument, Err: fmt.Errorf("GET %s: response larger than %d bytes", u, maxDocument)}
	}
	return data, resp.Header, nil
}

// maxJWKSKeys bounds how many keys of a JWKS are parsed; OPs publish a handful.
const maxJWKSKeys = 64

// parseJWKS reads a JWKS, keeping every key verify can use for signatures and skipping the rest —
// a key of a type it does not know (a post-quantum AKP key, say), a key that does not parse, or an
// encryption key — so that one such key does not make the whole set unusable. It fails only when
// no usable key is left. Use SkippedKeys to say which keys were left out.
func parseJWKS(data []byte) (jwk.Set, error) {
	set, _, err := parseJWKSReport(data)
	return set, err
}

// SkippedKeys describes the keys of a JWKS document that verify leaves out, one line a key.
func SkippedKeys(data []byte) []string {
	_, skipped, _ := parseJWKSReport(data)
	return skipped
}

func parseJWKSReport(data []byte) (jwk.Set, []string, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("the JWKS holds %d keys, more than the %d verify reads", len(doc.Keys), maxJWKSKeys)
	}
	set := jwk.NewSet()
	var skipped []string
	for i, raw := range doc.Keys {
		var hdr struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
		}
		_ = json.Unmarshal(raw, &hdr)
		name := fmt.Sprintf("key %d (kid %q, kty %q)", i, clip(hdr.Kid), clip(hdr.Kty))
		if hdr.Use != "" && hdr.Use != "sig" {
			skipped = append(skipped, name+": use "+clip(hdr.Use)+", not sig")
			continue
		}
		switch hdr.Kty {
		case "RSA", "EC", "OKP":
		default:
			skipped = append(skipped, name+": key type not used for ID token signatures")
			continue
		}
		key, err := jwk.ParseKey(raw)
		if err != nil {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		if err := set.AddKey(key); err != nil {
			skipped = append(skipped, name+": "+err.Error())
		}
	}
	if set.Len() == 0 {
		if len(skipped) > 0 {
			return nil, skipped, fmt.Errorf("the JWKS holds no usable signing key (%s)", strings.Join(skipped, "; "))
		}
		return nil, nil, errors.New("the JWKS holds no keys")
	}
	return set, skipped, nil
}
