// Package sshcert is the codec between an OpenPubkey PK token and an SSH user certificate.
//
// The certificate is signed by its own key: there is no certificate authority. What makes it
// trustworthy is the PK token in the "openpubkey-pkt" extension, whose OP-signed ID token commits
// (through the nonce) to exactly this key. The server re-derives everything from the token; the
// certificate's principals and validity are hints for the client and for sshd, never a source of
// authority. This is the format other OpenPubkey SSH clients use, so certificates travel both ways.
//
// Parse is total: it sees attacker-controlled bytes from sshd's %k, so every failure is an error
// (wrapping ErrMalformed), never a panic, and sizes are bounded before any decoding.
package sshcert

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Extension names and the wildcard principal shared with other OpenPubkey SSH implementations.
const (
	ExtensionPKToken     = "openpubkey-pkt"
	ExtensionAccessToken = "openpubkey-act"
	WildcardPrincipal    = "opkssh-wildcard"
)

// Critical options (OpenSSH PROTOCOL.certkeys) a key holder may put in their own certificate to
// restrict it. sshd enforces them itself: verify accepts certificates that carry them, and refuses
// any other critical option, which sshd would refuse too.
const (
	OptionForceCommand   = "force-command"   // the only command the certificate may run
	OptionSourceAddress  = "source-address"  // comma-separated CIDR list clients must connect from
	OptionVerifyRequired = "verify-required" // FIDO keys: require user verification (a PIN)
)

// supportedCriticalOptions are the critical options Parse accepts.
var supportedCriticalOptions = []string{OptionForceCommand, OptionSourceAddress, OptionVerifyRequired}

// Size limits. A GQ-signed PK token is about 6.3 KB; 64 KiB leaves room for any honest
// certificate while refusing a 1 MiB %k before base64 decoding it.
const (
	MaxCertBase64 = 64 << 10
	MaxPKToken    = 48 << 10
)

// ErrMalformed is wrapped by every Parse error caused by the certificate's bytes.
var ErrMalformed = errors.New("malformed certificate")

// ErrExpired is wrapped by the Parse error for a certificate that is well-formed and correctly
// signed but whose validity ended: an old login, not an attack, so the decision log says so.
var ErrExpired = errors.New("certificate expired")

// Params describe a certificate to create.
type Params struct {
	Signer      crypto.Signer // the user's key; it becomes both the certified key and the signer
	PKToken     []byte        // compact PK token
	KeyID       string        // shown in sshd's logs: email, or sub when there is no email
	ValidAfter  time.Time
	ValidBefore time.Time // zero means unlimited
	Principals  []string  // defaults to [WildcardPrincipal]
	// ForceCommand, if set, is the only command sshd runs for this certificate (force-command),
	// and the certificate then permits no forwarding and no ~/.ssh/rc: a key for automation.
	ForceCommand string
	// SourceAddress, if set, are the addresses or CIDR blocks clients must connect from
	// (source-address); see ParseSourceAddress.
	SourceAddress []string
}

// ParseSourceAddress reads a comma-separated list of IP addresses and CIDR blocks as sshd's
// source-address option takes it. sshd refuses a certificate whose list it cannot read, and a
// block with host bits set (10.1.2.3/8) is such an entry, so those are errors here.
func ParseSourceAddress(list string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("empty entry in %q", list)
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is neither an IP address nor a CIDR block", f)
			}
			if p != p.Masked() {
				return nil, fmt.Errorf("%q has host bits set; the block is %s", f, p.Masked())
			}
		} else if a, err := netip.ParseAddr(f); err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR block", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// New creates the self-signed user certificate that carries the PK token.
func New(p Params) (*ssh.Certificate, error) {
	if p.Signer == nil || len(p.PKToken) == 0 {
		return nil, errors.New("sshcert: signer and PK token are required")
	}
	if len(p.PKToken) > MaxPKToken {
		return nil, fmt.Errorf("sshcert: PK token of %d bytes exceeds %d", len(p.PKToken), MaxPKToken)
	}
	pub, err := ssh.NewPublicKey(p.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("sshcert: %w", err)
	}
	sshSigner, err := ssh.NewSignerFromSigner(p.Signer)
	if err != nil {
		return nil, fmt.Errorf("sshcert: %w", err)
	}
	principals := p.Principals
	if len(principals) == 0 {
		principals = []string{WildcardPrincipal}
	}
	before := uint64(ssh.CertTimeInfinity)
	if !p.ValidBefore.IsZero() {
		before = uint64(p.ValidBefore.Unix())
	}
	exts := map[string]string{ExtensionPKToken: string(p.PKToken), "permit-pty": ""}
	if p.ForceCommand == "" {
		// The usual permissions of an interactive login; sshd grants nothing more than the
		// account's own configuration allows. A forced command gets only the pty, which
		// interactive forced commands need; forwarding would let the key do more than the command.
		for _, e := range []string{"permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-user-rc"} {
			exts[e] = ""
		}
	}
	var opts map[string]string
	if p.ForceCommand != "" || len(p.SourceAddress) > 0 {
		opts = map[string]string{}
	}
	if p.ForceCommand != "" {
		opts[OptionForceCommand] = p.ForceCommand
	}
	if len(p.SourceAddress) > 0 {
		opts[OptionSourceAddress] = strings.Join(p.SourceAddress, ",")
	}
	cert := &ssh.Certificate{
		Key:             pub,
		CertType:        ssh.UserCert,
		KeyId:           p.KeyID,
		ValidPrincipals: principals,
		ValidAfter:      uint64(max(p.ValidAfter.Unix(), 0)),
		ValidBefore:     before,
		Permissions:     ssh.Permissions{CriticalOptions: opts, Extensions: exts},
	}
	if err := cert.SignCert(rand.Reader, sshSigner); err != nil {
		return nil, fmt.Errorf("sshcert: signing: %w", err)
	}
	return cert, nil
}

// Parse decodes sshd's %k (base64 certificate blob) and checks that it is a well-formed user
// certificate of the declared type %t, signed by its own key, within its validity period at now,
// with no critical option but force-command, source-address and verify-required (which sshd
// enforces). It does not look at the PK token beyond its presence.
func Parse(keyType, b64 string, now time.Time) (*ssh.Certificate, error) {
	if len(b64) > MaxCertBase64 {
		return nil, fmt.Errorf("%w: %d bytes of base64 exceed the %d byte limit", ErrMalformed, len(b64), MaxCertBase64)
	}
	if !strings.HasSuffix(keyType, "-cert-v01@openssh.com") {
		return nil, fmt.Errorf("%w: key type %q is not a certificate type", ErrMalformed, truncate(keyType))
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%w: a plain %s key, not a certificate", ErrMalformed, pub.Type())
	}
	if cert.Type() != keyType {
		return nil, fmt.Errorf("%w: declared type %q but the blob is %q", ErrMalformed, truncate(keyType), cert.Type())
	}
	if cert.CertType != ssh.UserCert {
		return nil, fmt.Errorf("%w: a host certificate, not a user certificate", ErrMalformed)
	}
	if !bytes.Equal(cert.Key.Marshal(), cert.SignatureKey.Marshal()) {
		return nil, fmt.Errorf("%w: signed by a key other than its own", ErrMalformed)
	}
	// Before the signature check, which costs what the key's size makes it cost.
	if err := CheckKeyBounds(cert.Key); err != nil {
		return nil, err
	}
	// The restrictions a key holder may add are sshd's to enforce; any other critical option is
	// one sshd would refuse, and so do we.
	// An expired certificate is checked in full as of a moment of its validity, so that only a
	// well-formed, correctly signed one is reported as expired rather than malformed.
	expired := expiredAt(cert, now)
	at := now
	if expired {
		at = time.Unix(int64(cert.ValidAfter), 0)
	}
	checker := ssh.CertChecker{Clock: func() time.Time { return at }, SupportedCriticalOptions: supportedCriticalOptions}
	// CheckCert verifies the signature and the validity window; the principal test is done by
	// the caller against policy, so hand it one the certificate lists.
	principal := ""
	if len(cert.ValidPrincipals) > 0 {
		principal = cert.ValidPrincipals[0]
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if expired {
		return nil, fmt.Errorf("%w at %s (now %s); log in again", ErrExpired,
			time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// expiredAt says whether cert has a sane validity window (a start before its end, both within
// int64 seconds) that ended at or before now. Any other window is left to CheckCert.
func expiredAt(cert *ssh.Certificate, now time.Time) bool {
	if cert.ValidBefore == ssh.CertTimeInfinity || cert.ValidBefore > math.MaxInt64 || cert.ValidAfter >= cert.ValidBefore {
		return false
	}
	return now.Unix() >= int64(cert.ValidBefore)
}

// PKToken returns the compact PK token carried by the certificate.
func PKToken(cert *ssh.Certificate) ([]byte, error) {
	v, ok := cert.Permissions.Extensions[ExtensionPKToken]
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: no %s extension (not an OpenPubkey certificate)", ErrMalformed, ExtensionPKToken)
	}
	if len(v) > MaxPKToken {
		return nil, fmt.Errorf("%w: %s extension of %d bytes exceeds %d", ErrMalformed, ExtensionPKToken, len(v), MaxPKToken)
	}
	return []byte(v), nil
}

// HasPrincipal reports whether the certificate lists p.
func HasPrincipal(cert *ssh.Certificate, p string) bool {
	for _, q := range cert.ValidPrincipals {
		if q == p {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
