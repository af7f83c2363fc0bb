// Package provider knows how to talk to an OpenID Provider from the workstation: which issuer and
// client to use (presets and the client configuration file, config.go), and how to run the
// browser login (login.go, with a pasted redirect address for a browser elsewhere: paste.go) or the
// device-code login (device.go) that yields a PK token, and how to renew that login with a refresh
// token (refresh.go).
//
// The login is an OAuth 2.0 authorization-code flow with PKCE (S256) on a loopback redirect URI,
// done with golang.org/x/oauth2 and github.com/coreos/go-oidc. The OpenPubkey part is the nonce:
// it is the hash of the client instance claims (the fresh public key plus a random value), so the
// ID token the OP signs commits to our key. The PK token is then assembled with the openpubkey
// pktoken package. We deliberately do not link openpubkey's client and providers packages: they
// pull in memguard, whose mlock at start-up crashes under a small RLIMIT_MEMLOCK, and every
// package linked into the binary is paid for by `opkssh verify` on each ssh login.
package provider

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/opkssh-team/opkssh/internal/idtoken"
)

// DefaultRedirectURIs are tried in order; the first whose port is free is used. They match the
// client registrations made for other OpenPubkey SSH tools. Each call returns a fresh slice.
func DefaultRedirectURIs() []string {
	return []string{
		"http://localhost:3000/login-callback",
		"http://localhost:10001/login-callback",
		"http://localhost:11110/login-callback",
	}
}

// DefaultScopes are requested when the user names none. Each call returns a fresh slice.
func DefaultScopes() []string { return []string{"openid", "email", "profile"} }

// Config names an OP and our client registration at it.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string   // empty for public clients (PKCE protects the code)
	Scopes       []string // must include "openid"
	RedirectURIs []string
	// NoRefreshToken stops login from asking for a refresh token (offline_access), which it
	// otherwise does where the OP offers one, and "login --if-needed" from using a stored one.
	NoRefreshToken bool
}

// Validate checks the configuration before any network traffic.
func (c Config) Validate() error {
	if c.ClientID == "" {
		return errors.New("a client ID is required (--client-id): the ID your OP registered for opkssh")
	}
	if err := ValidateIssuer(c.Issuer); err != nil {
		return err
	}
	hasOpenID := false
	for _, s := range c.Scopes {
		if s == "openid" {
			hasOpenID = true
		}
	}
	if !hasOpenID {
		return fmt.Errorf("scopes %q must include \"openid\"", strings.Join(c.Scopes, " "))
	}
	for _, r := range c.RedirectURIs {
		if err := validateRedirect(r); err != nil {
			return err
		}
	}
	return nil
}

// ValidateIssuer accepts https URLs, and http URLs only on loopback hosts, where no one can sit
// between the client and the OP.
func ValidateIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("an issuer URL is required (--issuer), e.g. https://accounts.google.com")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("issuer %q is not a URL: %v", issuer, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("issuer %q must be a plain URL such as https://sso.example.com/realms/main", issuer)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if idtoken.IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("issuer %q uses http: only https is accepted, except for loopback test OPs", issuer)
	default:
		return fmt.Errorf("issuer %q must use https", issuer)
	}
}

func validateRedirect(r string) error {
	u, err := url.Parse(r)
	if err != nil {
		return fmt.Errorf("redirect URI %q: %v", r, err)
	}
	if u.Scheme != "http" || !idtoken.IsLoopbackHost(u.Hostname()) || u.Port() == "" || u.Port() == "0" {
		return fmt.Errorf("redirect URI %q must be http on localhost or a loopback IP with an explicit port, e.g. http://localhost:3000/login-callback", r)
	}
	return nil
}
