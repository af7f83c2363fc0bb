package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// Microsoft Entra ID names a tenant two ways: by its directory (tenant) ID, a GUID, and by any of
// its verified domains (contoso.onmicrosoft.com, contoso.com). Both work in the login URLs, but the
// issuer of the tenant's v2.0 ID tokens, and of the discovery document served under the domain,
// always names the GUID: https://login.microsoftonline.com/<GUID>/v2.0. An issuer built from a
// domain would fail OIDC discovery's issuer check at login and match no token's iss, so a domain
// is looked up once, when the provider is added, and the configuration keeps the GUID.

// EntraAuthority is the login host of Microsoft Entra ID's global cloud.
const EntraAuthority = "https://login.microsoftonline.com"

// maxEntraDiscovery bounds the discovery document read from the authority; Entra's is about 2 KB.
const maxEntraDiscovery = 256 << 10

// placeholderTenant is a syntactically valid tenant ID, for checking an entry before the real one
// is looked up.
const placeholderTenant = "00000000-0000-0000-0000-000000000000"

// EntraTenant is a Microsoft Entra tenant resolved to its directory ID.
type EntraTenant struct {
	Domain string // the verified domain the ID was looked up by; "" for a tenant given by its ID
	ID     string // the directory (tenant) ID, a lower-case GUID
	Issuer string // Authority/ID/v2.0, the iss of the tenant's v2.0 ID tokens
}

// EntraResolver looks up the directory ID of a tenant named by a domain, in the tenant's OpenID
// Connect discovery document.
type EntraResolver struct {
	// Authority is the Entra login host without a trailing slash; EntraAuthority if empty.
	Authority string
	// HTTPClient makes the request; if nil, one with DefaultHTTPTimeout. Either way, a redirect to
	// another host or scheme than the authority's is refused.
	HTTPClient *http.Client
}

func (r EntraResolver) authority() string {
	if r.Authority == "" {
		return EntraAuthority
	}
	return strings.TrimSuffix(r.Authority, "/")
}

// Resolve returns the tenant's directory ID and issuer. A tenant given as a GUID is taken as it is
// (lower-cased), with no request; a domain is resolved through
// Authority/<domain>/v2.0/.well-known/openid-configuration, whose issuer must have the form
// Authority/<GUID>/v2.0. The multi-tenant aliases (common, organizations, consumers) are refused:
// their tokens name each user's own tenant as issuer.
func (r EntraResolver) Resolve(ctx context.Context, tenant string) (EntraTenant, error) {
	if err := checkTenantName(tenant); err != nil {
		return EntraTenant{}, err
	}
	auth := r.authority()
	if isGUID(tenant) {
		id := strings.ToLower(tenant)
		return EntraTenant{ID: id, Issuer: auth + "/" + id + "/v2.0"}, nil
	}
	issuer, err := r.discoverIssuer(ctx, auth, tenant)
	if err != nil {
		return EntraTenant{}, fmt.Errorf("looking up Microsoft tenant %q: %w; check the domain, or pass the directory (tenant) ID shown in the Entra admin center (Overview → Tenant ID)", tenant, err)
	}
	id, ok := strings.CutPrefix(issuer, auth+"/")
	if ok {
		id, ok = strings.CutSuffix(id, "/v2.0")
	}
	if !ok || !isGUID(id) || id != strings.ToLower(id) {
		return EntraTenant{}, fmt.Errorf("the discovery document of Microsoft tenant %q names the issuer %q, not %s/<tenant ID>/v2.0; pass the directory (tenant) ID shown in the Entra admin center (Overview → Tenant ID)", tenant, clipText(issuer), auth)
	}
	return EntraTenant{Domain: tenant, ID: id, Issuer: issuer}, nil
}

// discoverIssuer fetches the tenant's discovery document and returns its issuer.
func (r EntraResolver) discoverIssuer(ctx context.Context, auth, tenant string) (string, error) {
	base, err := url.Parse(auth)
	if err != nil || base.Host == "" {
		return "", fmt.Errorf("authority %q is not a URL", auth)
	}
	docURL := auth + "/" + tenant + "/v2.0/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	hc := http.Client{Timeout: DefaultHTTPTimeout}
	if r.HTTPClient != nil {
		hc = *r.HTTPClient
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
			return fmt.Errorf("refusing a redirect to %s, another host than %s", req.URL.Redacted(), base.Host)
		}
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEntraDiscovery+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", docURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered HTTP %d%s", docURL, resp.StatusCode, entraErrorText(body))
	}
	if len(body) > maxEntraDiscovery {
		return "", fmt.Errorf("%s is larger than %d bytes", docURL, maxEntraDiscovery)
	}
	var doc struct {
		Issuer *string `json:"issuer"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("%s is not a discovery document: %v", docURL, err)
	}
	if doc.Issuer == nil {
		return "", fmt.Errorf("%s has no issuer", docURL)
	}
	return *doc.Issuer, nil
}

// entraErrorText returns ": " and the first line of the error_description of Entra's error body
// ("AADSTS90002: Tenant 'x' not found. …"), or "" if it has none.
func entraErrorText(body []byte) string {
	var e struct {
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil || e.Description == "" {
		return ""
	}
	first, _, _ := strings.Cut(e.Description, "\n")
	return ": " + clipText(strings.TrimSpace(first))
}

// clipText keeps text from the network short and printable in error messages.
func clipText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
	if r := []rune(s); len(r) > 200 {
		return string(r[:200]) + "…"
	}
	return s
}

// checkTenantName refuses what is neither a tenant ID nor a domain name before any request.
func checkTenantName(tenant string) error {
	switch {
	case tenant == "":
		return errors.New("the microsoft preset needs a tenant (--tenant): your directory (tenant) ID or a verified domain such as contoso.onmicrosoft.com")
	case isEntraAlias(tenant):
		return fmt.Errorf("tenant %q is a multi-tenant alias whose ID tokens name each user's own tenant as issuer; use your directory (tenant) ID (servers can accept several tenants: see docs/providers.md)", tenant)
	case !isGUID(tenant) && !isDomainName(tenant):
		return fmt.Errorf("tenant %q must be a directory (tenant) ID, such as b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f, or a verified domain name such as contoso.onmicrosoft.com", tenant)
	}
	return nil
}

func isEntraAlias(tenant string) bool {
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// isGUID accepts the 8-4-4-4-12 hexadecimal form, in either case.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// isDomainName accepts DNS names of at least two labels: letters, digits and inner hyphens, each
// label 1 to 63 characters, 253 in all. Anything else could change the path of the lookup URL.
func isDomainName(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
