package verifier

import "errors"

// Reason codes written to the decision log. They are stable: administrators grep for them.
const (
	ReasonAllowed           = "allowed"
	ReasonBadRequest        = "bad_request"             // missing or invalid arguments from sshd
	ReasonNotACertificate   = "not_a_certificate"       // a plain key: ssh tries it after a refused certificate
	ReasonCertMalformed     = "cert_malformed"          // not a parsable, self-signed, valid user certificate
	ReasonCertExpired       = "cert_expired"            // a well-formed certificate past its validity: log in again
	ReasonNoPKToken         = "no_pk_token"             // certificate without the openpubkey-pkt extension
	ReasonPKTokenMalformed  = "pk_token_malformed"      // the extension is not a PK token
	ReasonPolicyError       = "policy_error"            // policies.yaml missing, unreadable or invalid
	ReasonUnknownIssuer     = "unknown_issuer"          // no provider with the token's issuer
	ReasonProviderBroken    = "provider_broken"         // the provider's policy entry is invalid
	ReasonKeysUnavailable   = "keys_unavailable"        // could not obtain the provider's JWKS
	ReasonUnknownKey        = "unknown_signing_key"     // the token's kid is not in the JWKS
	ReasonAlgNotAllowed     = "alg_not_allowed"         // none, HMAC, or an algorithm the key does not allow
	ReasonBadSignature      = "bad_op_signature"        // the OP signature does not verify
	ReasonWrongIssuer       = "wrong_issuer"            // iss differs from the provider's issuer
	ReasonAudience          = "audience_mismatch"       // aud contains no configured client ID
	ReasonCommitment        = "commitment_mismatch"     // nonce is not the hash of the client instance claims
	ReasonCICSignature      = "bad_client_signature"    // the client's signature over the payload fails
	ReasonKeyMismatch       = "key_mismatch"            // certificate key differs from the committed key
	ReasonExpired           = "token_expired"           // past the provider's expiration rule
	ReasonIssuedInFuture    = "issued_in_future"        // iat beyond the allowed clock skew
	ReasonNotYetValid       = "token_not_yet_valid"     // nbf beyond the allowed clock skew
	ReasonClaimsMalformed   = "claims_malformed"        // payload claims of the wrong type
	ReasonUserPolicyError   = "user_policy_error"       // the principal's own policy file is unsafe or invalid, so ignored
	ReasonPrincipalMismatch = "cert_principal_mismatch" // the certificate lists neither the user nor opkssh-wildcard
	ReasonRefreshedInvalid  = "refreshed_token_invalid" // the PK token's refreshed ID token fails a check
	ReasonTokenInvalid      = "token_invalid"           // any other PK token verification failure
	ReasonGQRequired        = "gq_required"             // a CI provider's token without a GQ256 signature
)

// denial carries a reason code from the check that failed, through the layers between it and
// Verify (the PK token checks, the key source, the refreshed token), to the decision log.
type denial struct {
	code string
	err  error
}

func (d *denial) Error() string { return d.err.Error() }
func (d *denial) Unwrap() error { return d.err }

func deny(code string, err error) error { return &denial{code: code, err: err} }

// reasonOf extracts the reason code from an error, or def when it carries none.
func reasonOf(err error, def string) string {
	var d *denial
	if errors.As(err, &d) {
		return d.code
	}
	return def
}
