package verifier

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/policy"
)

// ReasonSignedOutsideValidity: the time a signature claims is outside the certificate's validity.
const ReasonSignedOutsideValidity = "signed_outside_validity"

// CertTokenOptions say against what VerifyCertToken checks a certificate's PK token.
type CertTokenOptions struct {
	// Policy supplies the providers (issuer, client IDs, expiration, keys); its rules are not used.
	Policy *policy.Policy
	Keys   KeySource // an in-memory Cache if nil
	// At is the time the certificate's key is claimed to have been used (a signature's time). When
	// set, it must lie in the certificate's validity and in the provider's expiration rule for
	// the token; when zero, no time is checked: the PK token says who held the key, not when a
	// signature was made.
	At        time.Time
	ClockSkew time.Duration // DefaultClockSkew if zero
}

// CertIdentity is the identity a certificate's PK token vouches for, after verification.
type CertIdentity struct {
	Provider    string // the policy's name of the provider
	Issuer      string
	Subject     string
	Email       string
	Claims      policy.Claims
	IssuedAt    time.Time
	Fingerprint string // of the certified key
	Keys        KeyInfo
}

// VerifyCertToken checks what Verify checks of a certificate's PK token — a self-signed user
// certificate within bounds, a PK token whose issuer is a provider of opts.Policy, committing to
// the certificate's key, signed by the client key and by the OP with the provider's keys for one
// of its client IDs — without a principal or a policy decision, at the time opts.At. It is for
// uses of an opkssh key other than an ssh login (signatures); the error carries a reason code
// (Reason).
func VerifyCertToken(ctx context.Context, cert *ssh.Certificate, opts CertTokenOptions) (id *CertIdentity, err error) {
	defer func() {
		if r := recover(); r != nil {
			id, err = nil, deny(ReasonTokenInvalid, fmt.Errorf("internal error: %v", r))
		}
	}()
	if opts.Keys == nil {
		opts.Keys = &Cache{}
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = DefaultClockSkew
	}
	if err := checkValidityAt(cert, opts.At); err != nil {
		return nil, err
	}
	// The certificate's own checks at a time inside its validity (sshcert.Parse checks validity).
	at := opts.At
	if at.IsZero() {
		at = time.Unix(int64(min(cert.ValidAfter, 1<<62)), 0)
	}
	cert, err = sshcert.Parse(cert.Type(), base64.StdEncoding.EncodeToString(cert.Marshal()), at)
	if err != nil {
		return nil, deny(ReasonCertMalformed, err)
	}
	id = &CertIdentity{Fingerprint: ssh.FingerprintSHA256(cert.Key)}
	raw, err := sshcert.PKToken(cert)
	if err != nil {
		return nil, deny(ReasonNoPKToken, err)
	}
	pkt, err := ParsePKToken(raw)
	if err != nil {
		return nil, deny(ReasonPKTokenMalformed, err)
	}
	claims, err := decodeClaims(pkt.Payload)
	if err != nil {
		return nil, deny(ReasonClaimsMalformed, err)
	}
	id.Issuer, id.Subject, id.Email = claimString(claims, "iss"), claimString(claims, "sub"), claimString(claims, "email")
	prov, idv, err := checkPKToken(ctx, opts.Policy, opts.Keys, cert, pkt, claims)
	if prov != nil {
		id.Provider = prov.Name
	}
	if idv != nil {
		id.Keys = idv.keyInfo
	}
	if err != nil {
		return nil, err
	}
	id.Claims = claims
	id.IssuedAt, _ = claimTime(claims, "iat")
	if !opts.At.IsZero() {
		if code, err := checkTime(claims, prov.Expiration, opts.At, opts.ClockSkew); err != nil {
			return nil, deny(code, fmt.Errorf("at the signature's time: %w", err))
		}
		if code, err := checkNotBefore(claims, opts.At, opts.ClockSkew); err != nil {
			return nil, deny(code, fmt.Errorf("at the signature's time: %w", err))
		}
	}
	return id, nil
}

// checkValidityAt refuses a time outside the certificate's validity, with its own reason.
func checkValidityAt(cert *ssh.Certificate, at time.Time) error {
	if at.IsZero() {
		return nil
	}
	u := at.Unix()
	if u < 0 || uint64(u) < cert.ValidAfter {
		return deny(ReasonSignedOutsideValidity, fmt.Errorf("signed at %s, before the certificate became valid (%s)", at.UTC().Format(time.RFC3339), certTime(cert.ValidAfter)))
	}
	if cert.ValidBefore != ssh.CertTimeInfinity && uint64(u) >= cert.ValidBefore {
		return deny(ReasonSignedOutsideValidity, fmt.Errorf("signed at %s, after the certificate expired (%s)", at.UTC().Format(time.RFC3339), certTime(cert.ValidBefore)))
	}
	return nil
}

func certTime(t uint64) string {
	if t > 1<<40 {
		return "never"
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

// Reason returns the reason code an error of VerifyCertToken carries, or ReasonTokenInvalid.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var d *denial
	if errors.As(err, &d) {
		return d.code
	}
	return ReasonTokenInvalid
}
