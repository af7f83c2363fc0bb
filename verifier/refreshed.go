package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openpubkey/openpubkey/pktoken"

	"github.com/opkssh-team/opkssh/internal/idtoken"
	"github.com/opkssh-team/opkssh/policy"
)

// A PK token may carry, after its signatures, a refreshed ID token (pktoken's FreshIDToken): the
// OP's answer to a refresh request made by the client that holds the key (see provider/refresh.go).
// It cannot commit to the key itself, so it counts only as a continuation of the original login:
//
//   - the OP's signature verifies with the provider's keys, under the same algorithm rules as the
//     original's (opSignature);
//   - iss is the provider's issuer and aud contains one of its client IDs;
//   - it agrees with the original (idtoken.CheckRefreshed): the same sub, aud and azp, an iat not
//     before the original's, the same email if it has one, and the same auth_time or nonce;
//   - its iat is not in the future beyond the clock skew.
//
// Then the provider's expiration rule is applied to it instead of the original (24h from its iat,
// or its exp for "expiration: oidc"). The policy is still evaluated on the original's claims: those
// are the ones bound to the key, and a refreshed token may carry fewer claims (OPs trim them) or
// say nothing about how the user authenticated (amr). Requiring an equal email keeps a token for a
// changed address from extending the old one.
//
// A refreshed token that fails any check denies the login (ReasonRefreshedInvalid), with one
// exception: a valid token that agrees with the original but carries neither its auth_time nor its
// nonce is not evidence about this key (idtoken.ErrUnboundRefresh), so it is ignored, as
// verifiers that do not know refreshes ignore it; the original's expiry then applies. This keeps
// certificates refreshed by other OpenPubkey clients at OPs without auth_time (Google) working for
// as long as their original login does. Ignoring a token gives nothing away: whoever can present
// the certificate holds its key and could equally present one without the refreshed token.

// refreshedClaims returns the claims the expiration rule applies to: the refreshed ID token's when
// the PK token carries one that continues the original login, and reports whether it did; the
// original's otherwise. latest is the latest acceptable iat (now plus the clock skew).
func (v *idTokenVerifier) refreshedClaims(ctx context.Context, pkt *pktoken.PKToken, original policy.Claims, latest time.Time) (policy.Claims, bool, error) {
	if len(pkt.FreshIDToken) == 0 {
		return original, false, nil
	}
	if v.provider.RequireGQ {
		return nil, false, deny(ReasonRefreshedInvalid, fmt.Errorf("provider %s requires GQ256 (require_gq), and a refreshed ID token carries the OP's own signature", v.provider.Name))
	}
	payload, err := v.opSignature(ctx, pkt.FreshIDToken)
	if err != nil {
		if reasonOf(err, "") == ReasonKeysUnavailable {
			return nil, false, err
		}
		return nil, false, deny(ReasonRefreshedInvalid, fmt.Errorf("refreshed ID token: %w", err))
	}
	fresh, err := decodeClaims(payload)
	if err != nil {
		return nil, false, deny(ReasonRefreshedInvalid, fmt.Errorf("refreshed ID token: %w", err))
	}
	if err := v.checkIssuer(claimString(fresh, "iss"), claimString(fresh, "tid")); err != nil {
		return nil, false, deny(ReasonRefreshedInvalid, fmt.Errorf("refreshed ID token: %w", err))
	}
	if err := v.checkAudience(payload); err != nil {
		return nil, false, deny(ReasonRefreshedInvalid, fmt.Errorf("refreshed ID token: %w", err))
	}
	if err := idtoken.CheckRefreshed(pkt.Payload, payload); errors.Is(err, idtoken.ErrUnboundRefresh) {
		return original, false, nil
	} else if err != nil {
		return nil, false, deny(ReasonRefreshedInvalid, err)
	}
	if iat, ok := claimTime(fresh, "iat"); !ok || iat.After(latest) {
		return nil, false, deny(ReasonRefreshedInvalid, fmt.Errorf("refreshed ID token iat is missing or in the future"))
	}
	return fresh, true, nil
}
