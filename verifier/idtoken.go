package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	// provider is the policy's provider with the concrete issuer whose keys sign this token (for
	// a multi-tenant template, the token's tenant); match is the policy's entry as written.
	provider *policy.Provider
	match    *policy.Provider
	keys     KeySource
	// keyInfo records where the keys came from, for the decision log.
	keyInfo KeyInfo
}

func (v *idTokenVerifier) Issuer() string { return v.provider.Issuer }

// allowedAlgs maps each accepted JWS algorithm to the key that may carry it: every asymmetric
// algorithm of RFC 7518 plus EdDSA (RFC 8037), each with its own key type and, for EC and OKP, the
// one curve that fits. Anything else — none, HS* — is refused before any key is looked up. GQ256
// proofs over RS256 tokens are checked apart (gq.go, ci.go).
var allowedAlgs = map[string]struct {
	kty   jwa.KeyType
	curve string // "" for RSA
}{
	"RS256": {jwa.RSA(), ""}, "RS384": {jwa.RSA(), ""}, "RS512": {jwa.RSA(), ""},
	"PS256": {jwa.RSA(), ""}, "PS384": {jwa.RSA(), ""}, "PS512": {jwa.RSA(), ""},
	"ES256": {jwa.EC(), "P-256"}, "ES384": {jwa.EC(), "P-384"}, "ES512": {jwa.EC(), "P-521"},
	"EdDSA": {jwa.OKP(), "Ed25519"},
}

// maxKidlessTries bounds how many keys a token without kid is tried against.
const maxKidlessTries = 8

func (v *idTokenVerifier) VerifyIDToken(ctx context.Context, idt []byte, cic *clientinstance.Claims) error {
	if v.provider.IsCI() {
		return v.verifyCI(ctx, idt, cic)
	}
	payload, err := v.oidcSignature(ctx, idt)
	if err != nil {
		return err
	}

	var claims struct {
		Issuer string  `json:"iss"`
		Tenant string  `json:"tid"`
		Nonce  *string `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return deny(ReasonClaimsMalformed, fmt.Errorf("ID token claims: %w", err))
	}
	if err := v.checkIssuer(claims.Issuer, claims.Tenant); err != nil {
		return err
	}
	if err := v.checkAudience(payload); err != nil {
		return err
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

// checkIssuer says whether iss (and tenant tid) is the issuer this verifier's keys belong to.
func (v *idTokenVerifier) checkIssuer(iss, tid string) error {
	match := v.match
	if match == nil {
		match = v.provider
	}
	if concrete, ok := match.TokenIssuer(iss, tid); !ok || concrete != v.provider.Issuer {
		return deny(ReasonWrongIssuer, fmt.Errorf("token issuer %q is not %q", clip(iss), v.provider.Issuer))
	}
	return nil
}

// checkAudience applies OIDC Core 3.1.3.7 to a verified payload: aud contains one of the
// provider's client IDs, and azp, when present, is one of them too — a token issued to another
// client whose aud merely lists ours is not for us.
func (v *idTokenVerifier) checkAudience(payload []byte) error {
	var claims struct {
		Aud json.RawMessage `json:"aud"`
		Azp *string         `json:"azp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return deny(ReasonClaimsMalformed, fmt.Errorf("ID token claims: %w", err))
	}
	auds, err := audiences(claims.Aud)
	if err != nil {
		return deny(ReasonClaimsMalformed, err)
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.provider.ClientIDs, a) }) {
		return deny(ReasonAudience, fmt.Errorf("audience %q contains none of the client IDs %q of provider %s", auds, v.provider.ClientIDs, v.provider.Name))
	}
	if claims.Azp != nil && !slices.Contains(v.provider.ClientIDs, *claims.Azp) {
		return deny(ReasonAudience, fmt.Errorf("authorized party (azp) %q is not one of the client IDs %q of provider %s", clip(*claims.Azp), v.provider.ClientIDs, v.provider.Name))
	}
	return nil
}

// opSignature checks the OP's signature on a compact JWS with the provider's key under an
// algorithm that key allows, and returns the payload. The same rules hold for the original ID
// token and a refreshed one: one signature, a typ that an ID token may carry, an asymmetric alg
// that fits the key's type, curve and alg.
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
	if typ, _ := hdr.Type(); !idTokenTyp(typ) {
		return nil, deny(ReasonTokenInvalid, fmt.Errorf("the OP's signed token has typ %q, not an ID token's (none or JWT)", clip(typ)))
	}
	alg, ok := hdr.Algorithm()
	if !ok {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("ID token header has no alg"))
	}
	if _, ok := allowedAlgs[alg.String()]; !ok {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("ID token algorithm %q is not accepted", clip(alg.String())))
	}
	kid, _ := hdr.KeyID()
	set, err := v.keySet(ctx, kid)
	if err != nil {
		return nil, err
	}
	if kid != "" {
		key, ok := set.LookupKeyID(kid)
		if !ok {
			return nil, deny(ReasonUnknownKey, fmt.Errorf("no key with kid %q in the JWKS of provider %s", clip(kid), v.provider.Name))
		}
		if err := keyFits(key, alg.String()); err != nil {
			return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("key %q: %w", clip(kid), err))
		}
		payload, err := jws.Verify(idt, jws.WithKey(alg, key))
		if err != nil {
			return nil, deny(ReasonBadSignature, fmt.Errorf("OP signature does not verify with key %q: %w", clip(kid), err))
		}
		return payload, nil
	}
	// No kid: try each key that fits the algorithm, as OIDC clients do, up to a bound.
	tried := 0
	for i := range set.Len() {
		key, _ := set.Key(i)
		if keyFits(key, alg.String()) != nil {
			continue
		}
		if tried == maxKidlessTries {
			break
		}
		tried++
		if payload, err := jws.Verify(idt, jws.WithKey(alg, key)); err == nil {
			return payload, nil
		}
	}
	if tried == 0 {
		return nil, deny(ReasonUnknownKey, fmt.Errorf("ID token has no kid and none of the %d keys of provider %s fits algorithm %s", set.Len(), v.provider.Name, alg))
	}
	return nil, deny(ReasonBadSignature, fmt.Errorf("ID token has no kid and its OP signature verifies with none of the %d keys that fit %s", tried, alg))
}

// idTokenTyp accepts the typ values OPs give ID tokens: none (Okta) or JWT. An access token
// (at+jwt, RFC 9068), a logout token or the client's own CIC signature is not an ID token.
func idTokenTyp(typ string) bool {
	return typ == "" || strings.EqualFold(typ, "JWT") || strings.EqualFold(typ, "application/jwt")
}

// keyFits says whether key may verify a signature made with alg: its type and curve are alg's,
// and if it names an alg, that one.
func keyFits(key jwk.Key, alg string) error {
	want := allowedAlgs[alg]
	if key.KeyType() != want.kty {
		return fmt.Errorf("algorithm %s does not fit a key of type %s", alg, key.KeyType())
	}
	if keyAlg, ok := key.Algorithm(); ok && keyAlg.String() != alg {
		return fmt.Errorf("key is for %s, token uses %s", keyAlg, alg)
	}
	if want.curve != "" {
		var crv jwa.EllipticCurveAlgorithm
		if err := key.Get("crv", &crv); err != nil || crv.String() != want.curve {
			return fmt.Errorf("algorithm %s needs curve %s", alg, want.curve)
		}
	}
	return nil
}

// keySet gets the provider's keys, naming kid so that a caching source can refetch on a miss.
func (v *idTokenVerifier) keySet(ctx context.Context, kid string) (jwk.Set, error) {
	set, info, err := v.keys.Keys(ctx, v.provider, kid)
	v.keyInfo = info
	if errors.Is(err, ErrUnsafeFile) {
		return nil, deny(ReasonProviderBroken, fmt.Errorf("provider %s is disabled: %w", v.provider.Name, err))
	}
	if err != nil {
		return nil, deny(ReasonKeysUnavailable, fmt.Errorf("keys of provider %s: %w", v.provider.Name, err))
	}
	return set, nil
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
