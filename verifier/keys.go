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
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/provider"
)

// KeySource supplies a provider's public keys. kid is the key the token names, so that a caching
// source can refetch when it does not know it (the OP rotated).
type KeySource interface {
	Keys(ctx context.Context, p *policy.Provider, kid string) (jwk.Set, error)
}

// DefaultFetchTimeout bounds each HTTP request made on the verify path.
const DefaultFetchTimeout = 5 * time.Second

// maxDocument bounds discovery documents and JWKS, which come from the network.
const maxDocument = 1 << 20

// Fetcher gets keys from the network (OIDC discovery, then jwks_uri) or, when the provider pins
// them with jwks_file, from that file without any network access.
type Fetcher struct {
	Timeout time.Duration // per request; DefaultFetchTimeout when zero
}

// Keys implements KeySource.
func (f Fetcher) Keys(ctx context.Context, p *policy.Provider, _ string) (jwk.Set, error) {
	if p.JWKSFile != "" {
		data, err := readBounded(p.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("pinned jwks_file: %w", err)
		}
		return parseJWKS(data)
	}
	data, err := f.FetchJWKS(ctx, p)
	if err != nil {
		return nil, err
	}
	return parseJWKS(data)
}

// FetchJWKS runs discovery and downloads the JWKS document of p.
func (f Fetcher) FetchJWKS(ctx context.Context, p *policy.Provider) ([]byte, error) {
	hc, err := f.client(p)
	if err != nil {
		return nil, err
	}
	disc, err := get(ctx, hc, p.Issuer+"/.well-known/openid-configuration")
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
	if err != nil || !(u.Scheme == "https" || (u.Scheme == "http" && provider.IsLoopbackHost(u.Hostname()))) {
		return nil, fmt.Errorf("discovery document of %s has an unusable jwks_uri %q", p.Issuer, doc.JWKSURI)
	}
	data, err := get(ctx, hc, doc.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return data, nil
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

func get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDocument {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u, maxDocument)
	}
	return data, nil
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
