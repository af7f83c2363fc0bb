package verifier

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/openpubkey/openpubkey/pktoken/clientinstance"

	"github.com/opkssh-team/opkssh/internal/gqsig"
	"github.com/opkssh-team/opkssh/policy"
)

// CI providers (policy kinds github-actions, forgejo-actions, gitlab-ci) are checked differently
// from browser OPs, because any job on the platform can obtain a token from them:
//
//   - the OP's signature must be a GQ256 proof (internal/gqsig) over an RS256 ID token, never the
//     RSA signature itself: a PK token from a CI job then holds no token another relying party
//     would accept as a bearer token. A plain RS256 token is refused (ReasonGQRequired);
//   - the proof verifies with the provider's RSA key named by the original header's kid;
//   - iss is the provider's issuer;
//   - the binding to the certificate's key: for GitHub and Forgejo the job asked for a token whose
//     aud is the commitment (the hash of the client instance claims); for GitLab, whose jobs get
//     tokens with a fixed aud, the commitment is the cic parameter of the GQ protected header, which
//     the proof covers, and aud must start with OPENPUBKEY-PKTOKEN: so that only tokens minted for
//     this use can be bound (ReasonCommitment, ReasonAudience);
//   - there are no client IDs; the policy names the job's repository or project exactly, and the
//     expiry is the token's exp (policy.ciProviderFields).
//
// The plain OIDC path (idtoken.go) does not change: GQ256 stays refused there.

// GitLabAudiencePrefix starts the aud of a GitLab CI token that may carry a GQ-bound commitment,
// as OpenPubkey defines it.
const GitLabAudiencePrefix = "OPENPUBKEY-PKTOKEN:"

// verifyCI checks a CI provider's GQ-signed ID token and its binding to cic.
func (v *idTokenVerifier) verifyCI(ctx context.Context, idt []byte, cic *clientinstance.Claims) error {
	tok, err := gqsig.Parse(idt)
	if err != nil {
		if alg := headerAlg(idt); alg != gqsig.Alg {
			return deny(ReasonGQRequired, fmt.Errorf("provider %s (%s) accepts only GQ256-signed tokens, this one is signed with %q: log in with opkssh login --ci, which replaces the OP's signature", v.provider.Name, v.provider.Kind, clip(alg)))
		}
		return deny(ReasonTokenInvalid, fmt.Errorf("GQ256 token: %w", err))
	}
	pub, err := v.gqKey(ctx, tok)
	if err != nil {
		return err
	}
	if err := tok.Verify(pub); err != nil {
		return deny(ReasonBadSignature, err)
	}
	payload := tok.Payload()
	var claims struct {
		Issuer string          `json:"iss"`
		Aud    json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return deny(ReasonClaimsMalformed, fmt.Errorf("ID token claims: %w", err))
	}
	if claims.Issuer != v.provider.Issuer {
		return deny(ReasonWrongIssuer, fmt.Errorf("token issuer %q is not %q", clip(claims.Issuer), v.provider.Issuer))
	}
	auds, err := audiences(claims.Aud)
	if err != nil || len(auds) != 1 {
		return deny(ReasonClaimsMalformed, fmt.Errorf("a CI token's aud must be one string"))
	}
	want, err := cic.Hash()
	if err != nil {
		return deny(ReasonPKTokenMalformed, err)
	}
	return checkCIBinding(v.provider, auds[0], tok.HeaderString("cic"), string(want))
}

// checkCIBinding checks the commitment for the provider's kind: aud for GitHub and Forgejo, the
// GQ header's cic (with the aud prefix) for GitLab.
func checkCIBinding(p *policy.Provider, aud, gqCIC, want string) error {
	switch p.Kind {
	case policy.ProviderGitLabCI:
		if !strings.HasPrefix(aud, GitLabAudiencePrefix) {
			return deny(ReasonAudience, fmt.Errorf("GitLab token aud %q does not start with %s: give the job an id_tokens entry with aud: %s<your server> (see docs/ci.md)", clip(aud), GitLabAudiencePrefix, GitLabAudiencePrefix))
		}
		if gqCIC == "" {
			return deny(ReasonCommitment, fmt.Errorf("GQ header carries no cic commitment"))
		}
		if gqCIC != want {
			return deny(ReasonCommitment, fmt.Errorf("GQ header's cic does not commit to the client instance claims"))
		}
	case policy.ProviderGitHubActions, policy.ProviderForgejoActions:
		if aud != want {
			return deny(ReasonCommitment, fmt.Errorf("aud does not commit to the client instance claims (a %s token must be requested with audience = the commitment)", p.Kind))
		}
	default:
		return deny(ReasonProviderBroken, fmt.Errorf("provider %s has unknown kind %q", p.Name, p.Kind))
	}
	return nil
}

// gqKey finds the OP's RSA key for a GQ token: by the original header's kid, or, without one, the
// single RSA key of the set.
func (v *idTokenVerifier) gqKey(ctx context.Context, tok *gqsig.Token) (*rsa.PublicKey, error) {
	kid := tok.OriginalKeyID()
	set, err := v.keySet(ctx, kid)
	if err != nil {
		return nil, err
	}
	var key jwk.Key
	if kid != "" {
		k, ok := set.LookupKeyID(kid)
		if !ok {
			return nil, deny(ReasonUnknownKey, fmt.Errorf("no key with kid %q in the JWKS of provider %s", clip(kid), v.provider.Name))
		}
		key = k
	} else {
		for i := range set.Len() {
			k, _ := set.Key(i)
			if keyFits(k, "RS256") != nil {
				continue
			}
			if key != nil {
				return nil, deny(ReasonUnknownKey, fmt.Errorf("GQ token's original header has no kid and provider %s has several RSA keys", v.provider.Name))
			}
			key = k
		}
		if key == nil {
			return nil, deny(ReasonUnknownKey, fmt.Errorf("provider %s has no RSA key for a GQ256 token", v.provider.Name))
		}
	}
	if err := keyFits(key, "RS256"); err != nil {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("key %q: %w", clip(kid), err))
	}
	var pub rsa.PublicKey
	if err := jwk.Export(key, &pub); err != nil {
		return nil, deny(ReasonAlgNotAllowed, fmt.Errorf("key %q is not an RSA public key: %w", clip(kid), err))
	}
	return &pub, nil
}

var b64url = base64.RawURLEncoding

// headerAlg reads a compact JWS's alg for an error message, "" when it cannot.
func headerAlg(token []byte) string {
	seg, _, _ := strings.Cut(string(token), ".")
	raw, err := b64url.DecodeString(seg)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Alg
}
