package testop

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Quirks make the test OP behave like particular production OPs do, within or at the edge of
// the specifications, so that opkssh's tests meet those behaviours on loopback. The zero value
// is the plain OP: issuer without a path, kid in every token, a JWKS of signing keys only, no
// clock offset, Cache-Control "max-age=300" on the JWKS, azp and a single aud equal to the
// client, no nbf, the full issuer in iss, one tenant and the nonce carried through every grant.
type Quirks struct {
	// IssuerPath is appended to the OP's address to make its issuer, e.g. "/" gives
	// "http://127.0.0.1:PORT/" and "/realms/x/" gives "http://127.0.0.1:PORT/realms/x/".
	// Discovery is served at the issuer without a trailing slash followed by
	// "/.well-known/openid-configuration" (OpenID Connect Discovery 1.0 section 4), and its
	// issuer field and the tokens' iss are the issuer exactly, slash included. The endpoints
	// stay at the root of the address (see Server.URL).
	IssuerPath string
	// NoKID leaves the kid header out of the ID tokens the OP signs, while the JWKS keeps
	// publishing all its keys: a verifier must try each key that fits.
	NoKID bool
	// ForeignJWKs publishes, before the real keys, keys that no ID token verifier can use: a
	// post-quantum ML-DSA-44 key (kty "AKP"), a key of a key type nobody knows, and an RSA key
	// with use "enc". A verifier must skip them, not fail on them.
	ForeignJWKs bool
	// ClockOffset sets the OP's clock ahead of (or, if negative, behind) the clock of the
	// machine: iat, exp, nbf and auth_time are computed from now+ClockOffset.
	ClockOffset time.Duration
	// JWKSCacheControl is the Cache-Control header of the JWKS response ("no-store",
	// "no-cache", "max-age=0", …); "" means "max-age=300".
	JWKSCacheControl string
	// AZP, if set, is the azp claim of the ID tokens, and aud lists the client and AZP, as when
	// one client obtains a token for another.
	AZP string
	// ExtraAudiences are added to aud after the client (and AZP), making it an array.
	ExtraAudiences []string
	// NotBefore, if not zero, adds an nbf claim NotBefore after iat (negative: before).
	NotBefore time.Duration
	// SchemelessIss strips the scheme from the iss claim of ID tokens, as Google's
	// "accounts.google.com" does, while discovery names the full issuer.
	SchemelessIss bool
	// Tenants, if not empty, make the OP multi-tenant in the manner of Microsoft Entra ID: each
	// tenant's issuer is BASE/{ID}/v2.0 with its own discovery document, each of its Domains
	// answers BASE/{domain}/v2.0/.well-known/openid-configuration with that tenant's issuer,
	// and BASE/common/v2.0/.well-known/openid-configuration names the issuer template
	// BASE/{tenantid}/v2.0, which Server.Issuer then returns too. Every user belongs to the
	// tenant User.Tenant names (the first tenant if empty); their ID tokens carry that
	// tenant's issuer as iss and its ID as tid. All tenants share the keys and endpoints.
	Tenants []Tenant
	// DeviceDropsNonce leaves the nonce out of the ID token of the device grant, as some OPs do
	// (RFC 8628 defines no nonce parameter): the token then commits to no client key.
	DeviceDropsNonce bool
}

// Tenant is a directory of a multi-tenant OP (see Quirks.Tenants).
type Tenant struct {
	ID      string   // e.g. a GUID
	Domains []string // domain names that alias the tenant, e.g. "contoso.onmicrosoft.com"
}

// EntraTemplate is the placeholder of the issuer template of a multi-tenant OP.
const EntraTemplate = "{tenantid}"

// pathSegmentRE limits tenant IDs and domains to what may stand in a URL path segment and a
// ServeMux pattern unescaped.
var pathSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// issuerPathRE is an absolute URL path of such segments, with an optional trailing slash.
var issuerPathRE = regexp.MustCompile(`^(/[A-Za-z0-9][A-Za-z0-9._-]*)*/?$`)

const wellKnown = "/.well-known/openid-configuration"

// checkQuirks refuses combinations that make no sense, and values that cannot be served.
func checkQuirks(q Quirks, users []User) error {
	if q.IssuerPath != "" && !issuerPathRE.MatchString(q.IssuerPath) {
		return fmt.Errorf("testop: IssuerPath %q must be an absolute path of letters, digits, '.', '_' and '-'", q.IssuerPath)
	}
	if len(q.Tenants) == 0 {
		for _, u := range users {
			if u.Tenant != "" {
				return fmt.Errorf("testop: user %q names tenant %q but the OP has no Tenants", u.Subject, u.Tenant)
			}
		}
		return nil
	}
	if q.IssuerPath != "" {
		return errors.New("testop: IssuerPath and Tenants exclude each other: tenants have their own issuers")
	}
	seen := map[string]bool{"common": true, "organizations": true, "consumers": true}
	for _, t := range q.Tenants {
		for _, name := range append([]string{t.ID}, t.Domains...) {
			if !pathSegmentRE.MatchString(name) {
				return fmt.Errorf("testop: tenant ID or domain %q must be letters, digits, '.', '_' and '-'", name)
			}
			if seen[name] {
				return fmt.Errorf("testop: tenant ID or domain %q is reserved or used twice", name)
			}
			seen[name] = true
		}
	}
	for _, u := range users {
		if u.Tenant != "" && !hasTenant(q.Tenants, u.Tenant) {
			return fmt.Errorf("testop: user %q names unknown tenant %q", u.Subject, u.Tenant)
		}
	}
	return nil
}

func hasTenant(ts []Tenant, id string) bool {
	return slices.ContainsFunc(ts, func(t Tenant) bool { return t.ID == id })
}

// discoveryIssuers maps each path that serves a discovery document to the suffix that, after
// the OP's base URL, makes the document's issuer.
func discoveryIssuers(q Quirks) map[string]string {
	if len(q.Tenants) == 0 {
		return map[string]string{strings.TrimSuffix(q.IssuerPath, "/") + wellKnown: q.IssuerPath}
	}
	m := map[string]string{"/common/v2.0" + wellKnown: "/" + EntraTemplate + "/v2.0"}
	for _, t := range q.Tenants {
		suffix := "/" + t.ID + "/v2.0"
		m[suffix+wellKnown] = suffix
		for _, d := range t.Domains {
			m["/"+d+"/v2.0"+wellKnown] = suffix
		}
	}
	return m
}

// TenantIssuer returns the issuer of the tenant with that ID: BASE/{id}/v2.0.
func (s *Server) TenantIssuer(id string) string { return s.base + "/" + id + "/v2.0" }

// userIssuer is the issuer that vouches for u: the OP's, or in a multi-tenant OP u's tenant's.
func (s *Server) userIssuer(u User) string {
	if t := s.tenantOf(u); t != "" {
		return s.TenantIssuer(t)
	}
	return s.issuer
}

// tenantOf is u's tenant ID, or "" if the OP has no tenants.
func (s *Server) tenantOf(u User) string {
	switch {
	case len(s.quirks.Tenants) == 0:
		return ""
	case u.Tenant != "":
		return u.Tenant
	default:
		return s.quirks.Tenants[0].ID
	}
}

// issClaim is the iss claim of u's ID tokens.
func (s *Server) issClaim(u User) string {
	iss := s.userIssuer(u)
	if s.quirks.SchemelessIss {
		if _, rest, ok := strings.Cut(iss, "://"); ok {
			return rest
		}
	}
	return iss
}

// audience is the aud claim for a token issued to clientID: the client alone as a string, or
// an array when AZP or ExtraAudiences add more.
func (q *Quirks) audience(clientID string) any {
	if q.AZP == "" && len(q.ExtraAudiences) == 0 {
		return clientID
	}
	aud := []string{clientID}
	for _, a := range append([]string{q.AZP}, q.ExtraAudiences...) {
		if a != "" && !slices.Contains(aud, a) {
			aud = append(aud, a)
		}
	}
	return aud
}

// withOffset returns now shifted by d.
func withOffset(now func() time.Time, d time.Duration) func() time.Time {
	if d == 0 {
		return now
	}
	return func() time.Time { return now().Add(d) }
}

// mlDSA44PublicKeySize is the size of an ML-DSA-44 public key (FIPS 204, table 2).
const mlDSA44PublicKeySize = 1312

// foreignJWKs returns the JSON of the keys ForeignJWKs publishes. The AKP and unknown-kty keys
// are random bytes in the right shape: nothing can, or should, verify with them.
func foreignJWKs() ([]json.RawMessage, error) {
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	pq := map[string]any{"kty": "AKP", "alg": "ML-DSA-44", "use": "sig", "kid": "quirk-ml-dsa-44", "pub": random(mlDSA44PublicKeySize)}
	unknown := map[string]any{"kty": "QUIRK-UNKNOWN", "alg": "QK1", "use": "sig", "kid": "quirk-unknown-kty", "k": random(32)}
	encKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("testop: generating the enc key: %w", err)
	}
	enc, err := jwk.Import(encKey.Public())
	if err != nil {
		return nil, fmt.Errorf("testop: importing the enc key: %w", err)
	}
	if err := jwk.AssignKeyID(enc); err != nil {
		return nil, err
	}
	if err := enc.Set(jwk.KeyUsageKey, jwk.ForEncryption); err != nil {
		return nil, err
	}
	if err := enc.Set(jwk.AlgorithmKey, jwa.RSA_OAEP_256()); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for _, k := range []any{pq, unknown, enc} {
		b, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("testop: encoding a foreign key: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}
