package provider

import (
	"errors"
	"fmt"
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
// Each call returns fresh values: a caller may change them.
func Presets() []Preset {
	return []Preset{
		{
			Name:        "google",
			Description: "Google accounts (issuer https://accounts.google.com); Google's desktop clients also need --client-secret",
			Issuer:      fixedIssuer("https://accounts.google.com"),
			Scopes:      []string{"openid", "email", "profile"},
		},
		{
			Name:        "microsoft",
			Description: "Microsoft Entra ID; needs --tenant (the directory ID, or a verified domain that is looked up)",
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
			Scopes: DefaultScopes(),
		},
	}
}

// LookupPreset returns the preset with that name.
func LookupPreset(name string) (Preset, bool) {
	presets := Presets()
	i := slices.IndexFunc(presets, func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Preset{}, false
	}
	return presets[i], true
}

// PresetNames lists the preset names, for error messages and help.
func PresetNames() []string {
	presets := Presets()
	names := make([]string, len(presets))
	for i, p := range presets {
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

// microsoftIssuer is the v2.0 issuer of one tenant, named by its directory ID: the issuer of a
// tenant's tokens always names the ID, never a domain (see entra.go), so a domain is refused here
// and "opkssh provider add" looks it up instead.
func microsoftIssuer(tenant string) (string, error) {
	if err := checkTenantName(tenant); err != nil {
		return "", err
	}
	if !isGUID(tenant) {
		return "", fmt.Errorf("tenant %q is a domain name, but the issuer of Entra's tokens names the directory (tenant) ID: write that ID (Entra admin center, Overview → Tenant ID) as the tenant, or add the provider with \"opkssh provider add NAME --preset microsoft --tenant %s\", which looks it up", tenant, tenant)
	}
	return EntraAuthority + "/" + strings.ToLower(tenant) + "/v2.0", nil
}
