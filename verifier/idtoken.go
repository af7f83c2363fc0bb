package verifier

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/openpubkey/openpubkey/pktoken/clientinstance"

	"github.com/opkssh-team/opkssh/policy"
)

// idTokenVerifier checks the OP's signature on the ID token with keys from a KeySource, and the
// issuer, audience and nonce commitment. Its method set is openpubkey's ProviderVerifier, so it
// also plugs into openpubkey's verifier.
type idTokenVerifier struct {
	provider *policy.Provider
	keys     KeySource
	// keyInfo records where the keys came from, for the decision log.
	keyInfo KeyInfo
}

func (v *idTokenVerifier) Issuer() string { return v.provider.Issuer }

// allowedAlgs maps each accepted JWS algorithm to the JWK key type that may carry it. Anything
// else — none, HS*, and GQ256 until CI providers are configured — is refused before key lookup.
var allowedAlgs = map[string]jwa.KeyType{
	"RS256": jwa.RSA(),
	"PS256": jwa.RSA(),
	"ES256": jwa.EC(),
	"EdDSA": jwa.OKP(),
}

func (v *idTokenVerifier) VerifyIDToken(ctx context.Context, idt []byte, cic *clientinstance.Claims) error {
	payload, err := v.opSignature(ctx, idt)
	if err != nil {
		return err
	}

	var claims struct {
		Issuer string          `json:"iss"`
		Aud    json.RawMessage `json:"aud"`
		Nonce  *string         `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return deny(ReasonClaimsMalformed, fmt.Errorf("ID token claims: %w", err))
	}
	if claims.Issuer != v.provider.Issuer {
		return deny(ReasonWrongIssuer, fmt.Errorf("token issuer %q is not %q", claims.Issuer, v.provider.Issuer))
	}
	auds, err := audiences(claims.Aud)
	if err != nil {
		return deny(ReasonClaimsMalformed, err)
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.provider.ClientIDs, a) }) {
		return deny(ReasonAudience, fmt.Errorf("audience %q contains none of the client IDs %q of provider %s", auds, v.provider.ClientIDs, v.provider.Name))
	}
	want, err := cic.Hash()
	if err != nil {
		return deny(ReasonPKTokenMalformed, err)
	}
	if claims.Nonce == nil || *claims.Nonce != string(want) {
		return deny(ReasonCommitment, fmt.Errorf("nonce does not commit to the client instance claims"))
	}
	return nil
}

// opSignature checks the OP's signature on a compact JWS with the provider's key under an
// algorithm that key allows, and returns the payload.
func (v *idTokenVerifier) opSignature(ctx context.Context, idt []byte) ([]byte, error) {
	msg, err := jws.Parse(idt)
	if err != nil {
		return nil, deny(ReasonTokenInvalid, fmt.Errorf("parsing ID token: %w", err))
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, deny(ReasonTokenInvalid, fmt.Errorf("ID token has %d signatures, want 1", len(sigs)))
	}
	hdr := sigs[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("ID token header has no alg"))
	}
	wantKty, ok := allowedAlgs[alg.String()]
	if !ok {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("ID token algorithm %q is not accepted", alg.String()))
	}
	kid, _ := hdr.KeyID()
	key, err := v.lookupKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	if key.KeyType() != wantKty {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("ID token algorithm %s does not fit key %q of type %s", alg, kid, key.KeyType()))
	}
	if keyAlg, ok := key.Algorithm(); ok && keyAlg.String() != alg.String() {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("key %q is for %s, token uses %s", kid, keyAlg, alg))
	}
	payload, err := jws.Verify(idt, jws.WithKey(alg, key))
	if err != nil {
		return nil, deny(ReasonBadSignature, fmt.Errorf("OP signature does not verify with key %q: %w", kid, err))
	}
	return payload, nil
}

// lookupKey finds the token's signing key, asking the source again on a miss in case the OP rotated.
func (v *idTokenVerifier) lookupKey(ctx context.Context, kid string) (jwk.Key, error) {
	set, info, err := v.keys.Keys(ctx, v.provider, kid)
	v.keyInfo = info
	if err != nil {
		return nil, deny(ReasonKeysUnavailable, fmt.Errorf("keys of provider %s: %w", v.provider.Name, err))
	}
	if kid == "" {
		// Without a kid the only safe choice is a JWKS holding exactly one key.
		if set.Len() == 1 {
			k, _ := set.Key(0)
			return k, nil
		}
		return nil, deny(ReasonUnknownKey, fmt.Errorf("ID token has no kid and the JWKS has %d keys", set.Len()))
	}
	if k, ok := set.LookupKeyID(kid); ok {
		return k, nil
	}
	return nil, deny(ReasonUnknownKey, fmt.Errorf("no key with kid %q in the JWKS of provider %s", kid, v.provider.Name))
}

// audiences accepts aud as a string or an array of strings (RFC 7519 §4.1.3).
func audiences(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("ID token has no aud")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("aud is neither a string nor a list of strings")
	}
	return many, nil
}
