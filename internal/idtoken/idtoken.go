// Package idtoken holds the rules about ID tokens and OP addresses that both sides apply: login
// (provider) when it refreshes a certificate, and verify (verifier) when it judges one.
package idtoken

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// IsLoopbackHost reports whether host is "localhost" or a loopback IP literal: the only hosts an
// OP, a JWKS or a redirect may be reached at over plain http.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrUnboundRefresh is returned by CheckRefreshed for a refreshed ID token that contradicts
// nothing in the original but carries neither its auth_time nor its nonce, so nothing shows that
// it continues the login of the original's key.
var ErrUnboundRefresh = errors.New("the refreshed ID token carries neither the original auth_time nor the original nonce, so nothing ties it to the original login")

// refreshClaims are the claims CheckRefreshed compares.
type refreshClaims struct {
	Iss      *string         `json:"iss"`
	Sub      *string         `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Azp      *string         `json:"azp"`
	Iat      *json.Number    `json:"iat"`
	AuthTime *json.Number    `json:"auth_time"`
	Nonce    *string         `json:"nonce"`
	Email    *string         `json:"email"`
}

// CheckRefreshed checks that the refreshed ID token payload (claims JSON) continues the login of
// the original one, by the rules of OpenID Connect Core section 12.2: the same iss, sub, aud and
// (when both have one) azp; an iat not before the original's; the same auth_time when both carry
// one, and the original's nonce if the refreshed token carries one. A refreshed token must also
// not speak for another address: when both carry an email, they are equal. Finally it must be
// bound to the original login by an equal auth_time or nonce, else the error wraps
// ErrUnboundRefresh.
//
// It checks no signature and no time against a clock: the caller does both.
func CheckRefreshed(original, refreshed []byte) error {
	var o, r refreshClaims
	if err := decodeRefreshClaims(original, &o); err != nil {
		return fmt.Errorf("original ID token: %w", err)
	}
	if err := decodeRefreshClaims(refreshed, &r); err != nil {
		return fmt.Errorf("refreshed ID token: %w", err)
	}
	switch {
	case *r.Iss != *o.Iss:
		return fmt.Errorf("refreshed ID token has issuer %q, the original %q", clipClaim(*r.Iss), clipClaim(*o.Iss))
	case *r.Sub != *o.Sub:
		return fmt.Errorf("refreshed ID token has subject %q, the original %q", clipClaim(*r.Sub), clipClaim(*o.Sub))
	}
	oAud, err := audienceSet(o.Aud)
	if err != nil {
		return fmt.Errorf("original ID token: %w", err)
	}
	rAud, err := audienceSet(r.Aud)
	if err != nil {
		return fmt.Errorf("refreshed ID token: %w", err)
	}
	if !slices.Equal(oAud, rAud) {
		return fmt.Errorf("refreshed ID token has audience %q, the original %q", rAud, oAud)
	}
	if o.Azp != nil && r.Azp != nil && *o.Azp != *r.Azp {
		return fmt.Errorf("refreshed ID token has azp %q, the original %q", clipClaim(*r.Azp), clipClaim(*o.Azp))
	}
	oIat, rIat, err := numbers(o.Iat, r.Iat, "iat")
	if err != nil {
		return err
	}
	if rIat < oIat {
		return fmt.Errorf("refreshed ID token was issued (iat %d) before the original (iat %d)", rIat, oIat)
	}
	if o.Email != nil && r.Email != nil && *o.Email != *r.Email {
		return fmt.Errorf("refreshed ID token has email %q, the original %q", clipClaim(*r.Email), clipClaim(*o.Email))
	}
	bound := false
	if o.AuthTime != nil && r.AuthTime != nil {
		oAuth, rAuth, err := numbers(o.AuthTime, r.AuthTime, "auth_time")
		if err != nil {
			return err
		}
		if oAuth != rAuth {
			return fmt.Errorf("refreshed ID token has auth_time %d, the original %d: it comes from another login", rAuth, oAuth)
		}
		bound = true
	}
	if r.Nonce != nil {
		if o.Nonce == nil || *o.Nonce != *r.Nonce {
			return errors.New("refreshed ID token has a nonce other than the original's: it comes from another login")
		}
		bound = true
	}
	if !bound {
		return ErrUnboundRefresh
	}
	return nil
}

func decodeRefreshClaims(payload []byte, c *refreshClaims) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	if c.Iss == nil || c.Sub == nil || *c.Iss == "" || *c.Sub == "" {
		return errors.New("iss or sub is missing")
	}
	return nil
}

// audienceSet reads aud, a string or a list of strings, as a sorted list.
func audienceSet(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 {
		return nil, errors.New("aud is neither a string nor a list of strings")
	}
	slices.Sort(many)
	return slices.Compact(many), nil
}

// numbers reads a numeric claim of both tokens as whole seconds.
func numbers(o, r *json.Number, name string) (int64, int64, error) {
	if o == nil || r == nil {
		return 0, 0, fmt.Errorf("%s is missing", name)
	}
	a, err1 := o.Float64()
	b, err2 := r.Float64()
	if err1 != nil || err2 != nil || a < 0 || b < 0 || a > 1e11 || b > 1e11 {
		return 0, 0, fmt.Errorf("%s is not a time", name)
	}
	return int64(a), int64(b), nil
}

// clipClaim keeps claim values from tokens short in error messages, which end up in logs.
func clipClaim(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
