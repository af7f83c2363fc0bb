package signing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/sshsig"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Reason codes of a refused signature, besides the verifier's codes for the PK token.
const (
	ReasonMalformed    = "signature_malformed"    // not an SSHSIG signature
	ReasonNamespace    = "wrong_namespace"        // made for another purpose
	ReasonPlainKey     = "plain_key"              // no certificate: nobody vouches for the key
	ReasonBadSignature = "bad_signature"          // the message was changed, or another key signed
	ReasonNotSigner    = "signer_not_allowed"     // verified, but the policy does not accept the identity
	ReasonNotOpkssh    = "not_opkssh_certificate" // a certificate without a PK token
)

// Error is a refusal with its reason code.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func refuse(reason string, format string, args ...any) error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason code of a Verify error.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return verifier.ReasonTokenInvalid
}

// Trust is what a signature is verified against.
type Trust struct {
	// Policy supplies the trusted providers, and, when RequireSigner is set, who is accepted.
	Policy *policy.Policy
	// RequireSigner: the identity must match a signers entry for the namespace or, with
	// Principal, a rule that lets it log in as Principal.
	RequireSigner bool
	Principal     string
	Keys          verifier.KeySource // the OPs' keys; an in-memory cache if nil
}

// Result is a verified signature.
type Result struct {
	Provider    string     `json:"provider"`
	Issuer      string     `json:"issuer"`
	Subject     string     `json:"sub"`
	Email       string     `json:"email,omitempty"`
	Namespace   string     `json:"namespace"`
	Fingerprint string     `json:"fingerprint"`
	KeyType     string     `json:"key_type"`
	IssuedAt    time.Time  `json:"token_issued_at"`
	ValidAfter  time.Time  `json:"cert_valid_after"`
	ValidBefore *time.Time `json:"cert_valid_before,omitempty"` // nil: no end
	SignedAt    *time.Time `json:"signed_at,omitempty"`         // the time checked, when one was given
	Keys        string     `json:"op_keys,omitempty"`           // where the OP's keys came from
	Explain     []string   `json:"explain,omitempty"`
}

// Identity is the email, or "sub <sub>" for a token without email.
func (r *Result) Identity() string {
	if r.Email != "" {
		return r.Email
	}
	return r.Subject
}

// Verify checks an armored signature over message for namespace; at is the time the signature
// claims (zero when none is claimed). See the package comment for what is checked.
func Verify(ctx context.Context, armored []byte, message io.Reader, namespace string, at time.Time, trust Trust) (*Result, error) {
	sig, err := sshsig.ParseArmored(armored)
	if err != nil {
		return nil, refuse(ReasonMalformed, "%v", err)
	}
	if sig.Namespace != namespace {
		return nil, refuse(ReasonNamespace, "the signature was made for namespace %q, not %q", sig.Namespace, namespace)
	}
	cert, err := certificateOf(sig)
	if err != nil {
		return nil, err
	}
	if err := sig.Verify(message, namespace); err != nil {
		return nil, refuse(ReasonBadSignature, "%v", err)
	}
	return checkIdentity(ctx, cert, namespace, at, trust)
}

// FindPrincipal checks an armored signature's certificate and identity without the message (what
// `ssh-keygen -Y find-principals` answers) and returns the verified identity.
func FindPrincipal(ctx context.Context, armored []byte, at time.Time, trust Trust) (*Result, error) {
	sig, err := sshsig.ParseArmored(armored)
	if err != nil {
		return nil, refuse(ReasonMalformed, "%v", err)
	}
	cert, err := certificateOf(sig)
	if err != nil {
		return nil, err
	}
	return checkIdentity(ctx, cert, sig.Namespace, at, trust)
}

// certificateOf returns the OpenPubkey certificate a signature embeds, with its key in bounds.
func certificateOf(sig *sshsig.Signature) (*ssh.Certificate, error) {
	cert, ok := sig.PublicKey.(*ssh.Certificate)
	if !ok {
		return nil, refuse(ReasonPlainKey, "signed by a plain %s key (%s) that nobody vouches for: opkssh accepts only signatures that embed an opkssh certificate (opkssh sign, or ssh-keygen -Y sign -f KEY-cert.pub)", sig.PublicKey.Type(), ssh.FingerprintSHA256(sig.PublicKey))
	}
	if _, err := sshcert.PKToken(cert); err != nil {
		return nil, refuse(ReasonNotOpkssh, "the signature's certificate (%s) carries no PK token: it is not an opkssh certificate", ssh.FingerprintSHA256(cert.Key))
	}
	if err := sshcert.CheckKeyBounds(cert.Key); err != nil {
		return nil, refuse(verifier.ReasonCertMalformed, "%v", err)
	}
	return cert, nil
}

func checkIdentity(ctx context.Context, cert *ssh.Certificate, namespace string, at time.Time, trust Trust) (*Result, error) {
	id, err := verifier.VerifyCertToken(ctx, cert, verifier.CertTokenOptions{Policy: trust.Policy, Keys: trust.Keys, At: at})
	if err != nil {
		return nil, &Error{Reason: verifier.Reason(err), Err: fmt.Errorf("the PK token in the signature's certificate: %w", err)}
	}
	res := &Result{
		Provider: id.Provider, Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, Namespace: namespace,
		Fingerprint: id.Fingerprint, KeyType: cert.Key.Type(), IssuedAt: id.IssuedAt.UTC(),
		ValidAfter: time.Unix(int64(min(cert.ValidAfter, 1<<40)), 0).UTC(), Keys: id.Keys.Source,
	}
	if cert.ValidBefore != ssh.CertTimeInfinity {
		t := time.Unix(int64(min(cert.ValidBefore, 1<<40)), 0).UTC()
		res.ValidBefore = &t
	}
	if !at.IsZero() {
		t := at.UTC()
		res.SignedAt = &t
	}
	if !trust.RequireSigner {
		return res, nil
	}
	var d policy.Decision
	if trust.Principal != "" {
		d = trust.Policy.Evaluate(trust.Principal, id.Provider, id.Claims)
	} else {
		d = trust.Policy.EvaluateSigner(id.Provider, namespace, id.Claims)
	}
	res.Explain = d.Explain
	if !d.Allowed {
		what := "no signers entry accepts"
		if trust.Principal != "" {
			what = fmt.Sprintf("no rule for principal %q accepts", trust.Principal)
		}
		return res, refuse(ReasonNotSigner, "the signature is valid and made by %s (%s), but %s this identity (%s)", res.Identity(), res.Issuer, what, d.Reason)
	}
	return res, nil
}
