package verifier

import (
	"context"
	"fmt"

	"github.com/opkssh-team/opkssh/internal/gqsig"
)

// Browser logins may carry a GQ256 proof in place of the OP's RS256 signature (login --gq): the
// certificate then holds no ID token that another relying party of the same OP and client ID would
// accept. For an OIDC provider verify accepts both forms, and every other check (issuer, audience,
// azp, nonce, expiry) is the same; a provider with require_gq accepts only the GQ form, and then no
// refreshed ID token either, since that travels with the OP's signature.

// gqSignature checks a GQ256 proof over an RS256 ID token with the provider's key and returns the
// payload.
func (v *idTokenVerifier) gqSignature(ctx context.Context, idt []byte) ([]byte, error) {
	tok, err := gqsig.Parse(idt)
	if err != nil {
		return nil, deny(ReasonTokenInvalid, fmt.Errorf("GQ256 token: %w", err))
	}
	pub, err := v.gqKey(ctx, tok)
	if err != nil {
		return nil, err
	}
	if err := tok.Verify(pub); err != nil {
		return nil, deny(ReasonBadSignature, err)
	}
	return tok.Payload(), nil
}

// oidcSignature checks the OP's signature in either form, as the provider allows.
func (v *idTokenVerifier) oidcSignature(ctx context.Context, idt []byte) ([]byte, error) {
	alg := headerAlg(idt)
	switch {
	case alg == gqsig.Alg:
		return v.gqSignature(ctx, idt)
	case v.provider.RequireGQ:
		return nil, deny(ReasonGQRequired, fmt.Errorf("provider %s requires GQ256-signed tokens (require_gq), this one is signed with %q: log in with opkssh login --gq", v.provider.Name, clip(alg)))
	}
	return v.opSignature(ctx, idt)
}
