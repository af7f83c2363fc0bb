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
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/opkssh-team/opkssh/internal/idtoken"
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
type Fetcher struct {
	Timeout time.Duration // per request; DefaultFetchTimeout when zero
}

// Keys implements KeySource without any caching: pinned keys, or two requests to the OP.
func (f Fetcher) Keys(ctx context.Context, p *policy.Provider, _ string) (jwk.Set, KeyInfo, error) {
	if p.JWKSFile != "" {
		set, err := pinnedKeys(p)
		return set, KeyInfo{Source: KeySourcePinned}, err
	}
	doc, err := f.Fetch(ctx, p)
	if err != nil {
		return nil, KeyInfo{}, err
	}
	set, err := parseJWKS(doc.JWKS)
	return set, KeyInfo{Source: KeySourceNetwork, FetchedAt: doc.FetchedAt}, err
}

func pinnedKeys(p *policy.Provider) (jwk.Set, error) {
	data, err := readBounded(p.JWKSFile)
	if err != nil {
		return nil, fmt.Errorf("pinned jwks_file: %w", err)
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
	MaxAge    time.Duration // from the JWKS response's Cache-Control; 0 if absent
	// ServerDate is the JWKS response's Date header (the OP's clock), zero if absent.
	ServerDate time.Time
}

// Fetch runs discovery and downloads the JWKS document of p.
func (f Fetcher) Fetch(ctx context.Context, p *policy.Provider) (*Fetched, error) {
	hc, err := f.client(p)
	if err != nil {
		return nil, err
	}
	disc, _, err := get(ctx, hc, p.Issuer+"/.well-known/openid-configuration")
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(disc, &doc); err != nil {
		return nil, fmt.Errorf("discovery document of %s: %w", p.Issuer, err)
	}
	if doc.Issuer != p.Issuer {
		return nil, fmt.Errorf("discovery document names issuer %q, expected %q", doc.Issuer, p.Issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || !(u.Scheme == "https" || (u.Scheme == "http" && idtoken.IsLoopbackHost(u.Hostname()))) {
		return nil, fmt.Errorf("discovery document of %s has an unusable jwks_uri %q", p.Issuer, doc.JWKSURI)
	}
	data, hdr, err := get(ctx, hc, doc.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if _, err := parseJWKS(data); err != nil {
		return nil, fmt.Errorf("JWKS at %s: %w", doc.JWKSURI, err)
	}
	date, _ := http.ParseTime(hdr.Get("Date"))
	return &Fetched{Discovery: disc, JWKSURI: doc.JWKSURI, JWKS: data, FetchedAt: time.Now(), MaxAge: maxAge(hdr.Get("Cache-Control")), ServerDate: date}, nil
}

// maxAge reads max-age from a Cache-Control header; 0 when absent, no-store or no-cache.
func maxAge(cc string) time.Duration {
	var age time.Duration
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n > 0 {
				age = time.Duration(n) * time.Second
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
		pem, err := readBounded(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", p.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

func get(ctx context.Context, hc *http.Client, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: HTTP %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxDocument {
		return nil, nil, fmt.Errorf("GET %s: response larger than %d bytes", u, maxDocument)
	}
	return data, resp.Header, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDocument {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxDocument)
	}
	return data, nil
}

func parseJWKS(data []byte) (jwk.Set, error) {
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("the JWKS holds no keys")
	}
	return set, nil
}
