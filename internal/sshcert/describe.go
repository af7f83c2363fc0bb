package sshcert

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Description is a readable account of a certificate and the PK token inside it. Nothing in it is
// verified: it is what the certificate claims, for a person or a script to look at.
type Description struct {
	KeyType     string     `json:"key_type"`
	Fingerprint string     `json:"fingerprint"`
	KeyID       string     `json:"key_id"`
	Principals  []string   `json:"principals"`
	ValidAfter  time.Time  `json:"valid_after"`
	ValidBefore *time.Time `json:"valid_before"` // nil: no end
	SelfSigned  bool       `json:"self_signed"`
	// CriticalOptions are the holder's restrictions (force-command, source-address…), by name.
	CriticalOptions map[string]string `json:"critical_options,omitempty"`
	Extensions      []string          `json:"extensions"`
	Token           *TokenInfo        `json:"pk_token,omitempty"`
	TokenError      string            `json:"pk_token_error,omitempty"`
	// Verified is always false: Describe checks no signature, so every field is a claim. It is
	// in the JSON so that a script cannot mistake the output for a verdict.
	Verified bool `json:"verified"`
}

// TokenInfo holds the ID token claims of the PK token.
type TokenInfo struct {
	Issuer        string     `json:"issuer"`
	Subject       string     `json:"subject"`
	Email         string     `json:"email,omitempty"`
	EmailVerified *bool      `json:"email_verified,omitempty"`
	Audience      []string   `json:"audience"`
	Groups        []string   `json:"groups,omitempty"`
	IssuedAt      *time.Time `json:"issued_at,omitempty"`
	Expires       *time.Time `json:"expires_at,omitempty"`
	Algorithm     string     `json:"op_algorithm,omitempty"`
	Size          int        `json:"size_bytes"`
	// Claims is the whole ID token payload as the OP sent it (amr, auth_time, custom claims…),
	// for writing policy rules on claims the fields above leave out.
	Claims map[string]json.RawMessage `json:"claims"`
}

// ShownClaims are the claims TokenInfo has a field for; OtherClaims lists the rest.
var ShownClaims = []string{"iss", "sub", "email", "email_verified", "aud", "groups", "iat", "exp"}

// OtherClaims returns the names of the claims without a field of their own, sorted.
func (t *TokenInfo) OtherClaims() []string {
	var out []string
	for name := range t.Claims {
		if !slices.Contains(ShownClaims, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Describe reads cert without verifying anything.
func Describe(cert *ssh.Certificate) Description {
	d := Description{
		KeyType:     cert.Key.Type(),
		Fingerprint: ssh.FingerprintSHA256(cert.Key),
		KeyID:       cert.KeyId,
		Principals:  cert.ValidPrincipals,
		ValidAfter:  time.Unix(int64(min(cert.ValidAfter, 1<<62)), 0).UTC(),
		SelfSigned:  string(cert.Key.Marshal()) == string(cert.SignatureKey.Marshal()),
	}
	if cert.ValidBefore != ssh.CertTimeInfinity {
		t := time.Unix(int64(min(cert.ValidBefore, 1<<62)), 0).UTC()
		d.ValidBefore = &t
	}
	if len(cert.CriticalOptions) > 0 {
		d.CriticalOptions = cert.CriticalOptions
	}
	for name := range cert.Permissions.Extensions {
		d.Extensions = append(d.Extensions, name)
	}
	raw, err := PKToken(cert)
	if err != nil {
		d.TokenError = err.Error()
		return d
	}
	info, err := describeToken(raw)
	if err != nil {
		d.TokenError = err.Error()
		return d
	}
	d.Token = info
	return d
}

// describeToken reads the payload and OP header of a compact PK token
// (payload:opHeader:opSig:cicHeader:cicSig[...]) without verifying them.
func describeToken(raw []byte) (*TokenInfo, error) {
	body, _, _ := strings.Cut(string(raw), ".")
	parts := strings.Split(body, ":")
	if len(parts) < 5 {
		return nil, fmt.Errorf("%w: PK token has %d parts, want at least 5", ErrMalformed, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: PK token payload: %v", ErrMalformed, err)
	}
	var c struct {
		Iss           string          `json:"iss"`
		Sub           string          `json:"sub"`
		Email         string          `json:"email"`
		EmailVerified *bool           `json:"email_verified"`
		Aud           json.RawMessage `json:"aud"`
		Groups        json.RawMessage `json:"groups"`
		Iat           *float64        `json:"iat"`
		Exp           *float64        `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: PK token claims: %v", ErrMalformed, err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &all); err != nil {
		return nil, fmt.Errorf("%w: PK token claims: %v", ErrMalformed, err)
	}
	if all == nil { // a payload of null
		all = map[string]json.RawMessage{}
	}
	info := &TokenInfo{Issuer: c.Iss, Subject: c.Sub, Email: c.Email, EmailVerified: c.EmailVerified, Size: len(raw), Claims: all}
	// aud and groups may each be one string or a list of strings.
	info.Audience, info.Groups = stringOrList(c.Aud), stringOrList(c.Groups)
	info.IssuedAt, info.Expires = unixPtr(c.Iat), unixPtr(c.Exp)
	if hdr, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
		var h struct {
			Alg string `json:"alg"`
		}
		if json.Unmarshal(hdr, &h) == nil {
			info.Algorithm = h.Alg
		}
	}
	return info, nil
}

// stringOrList reads a claim that is a string or a list of strings; anything else reads as none.
func stringOrList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	json.Unmarshal(raw, &list)
	return list
}

func unixPtr(f *float64) *time.Time {
	if f == nil || *f < 0 || *f > 1e11 {
		return nil
	}
	t := time.Unix(int64(*f), 0).UTC()
	return &t
}
