package policy

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Limits and defaults of the schema.
const (
	maxFileSize       = 4 << 20
	maxErrors         = 20
	maxExpiration     = 30 * 24 * time.Hour
	defaultExpiration = 24 * time.Hour
	defaultGroups     = "groups"
)

// ValidPrincipal reports whether name may be used as a login name: 1 to 32
// characters from [A-Za-z0-9_.-], not starting with '-' or '.'. Principals
// end up in an authorized_keys line, so nothing else is let through.
func ValidPrincipal(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validProviderName reports whether name matches [a-z0-9][a-z0-9_-]*.
func validProviderName(name string) bool {
	if name == "" || name[0] == '_' || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkIssuer returns what is wrong with an issuer URL, or "". The multi-tenant placeholder may
// stand once in the path.
func checkIssuer(iss string) string {
	if n := strings.Count(iss, TenantPlaceholder); n > 1 || n == 1 && !placeholderIsSegment(iss) {
		return fmt.Sprintf("%q: %s may stand once, as a whole path segment, e.g. https://login.microsoftonline.com/%s/v2.0", iss, TenantPlaceholder, TenantPlaceholder)
	}
	u, err := url.Parse(strings.Replace(iss, TenantPlaceholder, "tenant", 1))
	if err != nil {
		return fmt.Sprintf("%q is not a URL; write the issuer exactly as the token's iss claim, e.g. https://sso.example.com/realms/main", iss)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("%q must start with https://", iss)
	case u.Host == "" || u.Opaque != "":
		return fmt.Sprintf("%q has no host; write the full URL, e.g. https://sso.example.com", iss)
	case u.User != nil:
		return fmt.Sprintf("%q contains a user name or password; remove it", iss)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(iss, "#"):
		return fmt.Sprintf("%q has a query or fragment; an issuer has neither", iss)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return fmt.Sprintf("%q uses http; use https (http is accepted only for localhost, 127.0.0.0/8 and ::1)", iss)
	}
	return ""
}

// placeholderIsSegment reports whether the tenant placeholder in iss is a whole segment of the
// path, never part of the host.
func placeholderIsSegment(iss string) bool {
	_, rest, ok := strings.Cut(iss, "://")
	if !ok {
		return false
	}
	slash := strings.IndexByte(rest, '/')
	i := strings.Index(rest, "/"+TenantPlaceholder)
	if slash < 0 || i < slash {
		return false
	}
	after := rest[i+1+len(TenantPlaceholder):]
	return after == "" || after[0] == '/'
}

// validTenantID accepts a directory ID as Entra writes it into iss and tid: letters, digits and
// '-', at most 64 characters. Domains are resolved to IDs on the workstation (provider add).
func validTenantID(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// parseExpiration parses the expiration field; the string is the problem, or "".
func parseExpiration(s string) (Expiration, string) {
	if s == "oidc" {
		return Expiration{UseTokenExp: true}, ""
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Expiration{}, fmt.Sprintf("%q is neither \"oidc\" nor a Go duration; write e.g. 24h, 90m or 168h (there is no day unit)", s)
	}
	if d <= 0 || d > maxExpiration {
		return Expiration{}, fmt.Sprintf("%s is out of range; use a duration above 0 and at most 720h (30 days), or \"oidc\"", s)
	}
	return Expiration{FromIAT: d}, ""
}

// checkAbsPath returns what is wrong with a file path field, or "".
func checkAbsPath(p string) string {
	if !filepath.IsAbs(p) {
		return fmt.Sprintf("%q is not an absolute path; write it from /, e.g. /etc/opkssh/%s", p, filepath.Base(p))
	}
	return ""
}

// checkClaimPath returns what is wrong with a dotted claim path, or "".
func checkClaimPath(p string) string {
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Sprintf("%q has an empty segment; write names separated by single dots, e.g. realm_access.roles", p)
		}
	}
	return ""
}

// nonIdentityClaims are claims that every token of a provider carries or
// that describe the login, the token or the client rather than the person: a
// claim identity on one of them would let everybody in (some OPs put typ:
// "ID" or client_id in every token). email is here because a claim identity
// skips the email_verified check that the email identity makes.
var nonIdentityClaims = map[string]string{
	"iss": "", "aud": "", "azp": "", "exp": "", "iat": "", "nbf": "", "auth_time": "",
	"nonce": "", "at_hash": "", "c_hash": "", "s_hash": "", "jti": "", "sid": "", "email_verified": "",
	"typ": "", "client_id": "", "cid": "", "uti": "", "rh": "", "session_state": "",
	"amr":   "; to require an authentication method use require: {amr: [...]}",
	"acr":   "",
	"email": "; use an email identity, which also checks email_verified",
}

// orgWideClaims are claims whose value is the same for every user of an OP
// or of a whole tenant. A rule on one is allowed (a tenant may be the point)
// but Warnings mentions it.
var orgWideClaims = map[string]string{
	"tid": "the tenant", "ver": "the token version", "idp": "the identity provider", "tenant": "the tenant",
}

// checkIdentity returns what is wrong with an identity's values, or "".
// It refuses every value that would match everybody.
func checkIdentity(id Identity) string {
	v := id.Value
	if v == "" {
		return "value is empty; an empty value would match everybody"
	}
	switch id.Kind {
	case KindEmail:
		if why := malformedEmail(v); why != "" {
			return fmt.Sprintf("%q is not an email address (it %s); write e.g. alice@example.com", v, why)
		}
	case KindEmailDomain:
		if p := checkDomain(v); p != "" {
			return p
		}
	case KindClaim:
		if id.ClaimName == "" {
			return "claim name is empty; write e.g. {name: realm_access.roles, value: admin}"
		}
		if p := checkClaimPath(id.ClaimName); p != "" {
			return "claim name " + p
		}
		if hint, bad := nonIdentityClaims[id.ClaimName]; bad {
			return fmt.Sprintf("claim %q does not identify a person and would match (nearly) every token%s", id.ClaimName, hint)
		}
	case KindRepository, KindProjectPath:
		return checkCIPath(id.Kind, v)
	case KindSub, KindGroup:
	default:
		return fmt.Sprintf("unknown identity kind %q (known: %s)", id.Kind, strings.Join(identityKeys, ", "))
	}
	return ""
}

func checkDomain(d string) string {
	switch {
	case strings.ContainsAny(d, "@*"):
		return fmt.Sprintf("%q must be a bare domain without @ or wildcards, e.g. example.com; list each domain separately", d)
	case strings.HasPrefix(d, "."):
		return fmt.Sprintf("%q starts with a dot; write the domain itself, e.g. example.com (subdomains never match)", d)
	case !strings.Contains(d, "."):
		return fmt.Sprintf("%q has no dot; a top-level domain would match too many people, write e.g. example.com", d)
	case strings.HasSuffix(d, ".") || strings.Contains(d, ".."):
		return fmt.Sprintf("%q has an empty label; write e.g. example.com", d)
	case strings.ContainsAny(d, " \t/:"):
		return fmt.Sprintf("%q is not a domain name; write e.g. example.com", d)
	}
	return ""
}

// asciiEqualFold is strings.EqualFold restricted to ASCII letters: other
// characters must be identical, so that e.g. the Kelvin sign U+212A does not
// stand in for 'k' in an email address.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
