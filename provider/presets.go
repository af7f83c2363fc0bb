package provider

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// A Preset fills in what is the same for every user of a well-known OP, so that a configuration
// entry needs only the client ID the user registered (and, for Microsoft, the tenant).
type Preset struct {
	Name        string
	Description string
	// Issuer returns the issuer for the entry; tenant is the Microsoft tenant, "" elsewhere.
	Issuer func(tenant string) (string, error)
	Scopes []string
}

// Presets are the OPs opkssh knows by name, in the order "opkssh provider add --help" lists them.
var Presets = []Preset{
	{
		Name:        "google",
		Description: "Google accounts (issuer https://accounts.google.com); Google's desktop clients also need --client-secret",
		Issuer:      fixedIssuer("https://accounts.google.com"),
		Scopes:      []string{"openid", "email", "profile"},
	},
	{
		Name:        "microsoft",
		Description: "Microsoft Entra ID; needs --tenant (the directory ID or a verified domain)",
		Issuer:      microsoftIssuer,
		Scopes:      []string{"openid", "email", "profile"},
	},
	{
		Name:        "gitlab",
		Description: "GitLab.com (issuer https://gitlab.com); pass --issuer for a self-managed GitLab",
		Issuer:      fixedIssuer("https://gitlab.com"),
		Scopes:      []string{"openid", "email", "profile"},
	},
	{
		Name:        "generic",
		Description: "any OpenID Connect provider (Keycloak, Authentik, Okta, Dex…); needs --issuer",
		Issuer: func(string) (string, error) {
			return "", errors.New("the generic preset needs an issuer URL (--issuer)")
		},
		Scopes: DefaultScopes,
	},
}

// LookupPreset returns the preset with that name.
func LookupPreset(name string) (Preset, bool) {
	i := slices.IndexFunc(Presets, func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Preset{}, false
	}
	return Presets[i], true
}

// PresetNames lists the preset names, for error messages and help.
func PresetNames() []string {
	names := make([]string, len(Presets))
	for i, p := range Presets {
		names[i] = p.Name
	}
	return names
}

func fixedIssuer(issuer string) func(string) (string, error) {
	return func(tenant string) (string, error) {
		if tenant != "" {
			return "", errors.New("only the microsoft preset takes a tenant")
		}
		return issuer, nil
	}
}

// microsoftIssuer is the v2.0 issuer of one tenant. The multi-tenant aliases ("common",
// "organizations", "consumers") are refused: their discovery document names a templated issuer
// that never equals a token's iss, so the login could not verify the ID token.
func microsoftIssuer(tenant string) (string, error) {
	switch strings.ToLower(tenant) {
	case "":
		return "", errors.New("the microsoft preset needs a tenant (--tenant): your directory (tenant) ID or a verified domain such as contoso.onmicrosoft.com")
	case "common", "organizations", "consumers":
		return "", fmt.Errorf("tenant %q is a multi-tenant alias whose ID tokens name each user's own tenant as issuer; use your directory (tenant) ID", tenant)
	}
	if strings.ContainsAny(tenant, "/?#%@: ") || url.PathEscape(tenant) != tenant {
		return "", fmt.Errorf("tenant %q must be a directory ID or a domain name", tenant)
	}
	return "https://login.microsoftonline.com/" + tenant + "/v2.0", nil
}
