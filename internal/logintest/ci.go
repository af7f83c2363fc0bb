package logintest

import (
	"context"
	"crypto"
	"crypto/rsa"
	"time"

	"github.com/openpubkey/openpubkey/pktoken"

	"github.com/opkssh-team/opkssh/internal/gqsig"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

// CILogin runs provider.CILogin in the environment env (a job of op's emulated platform) and
// wraps the PK token in a certificate valid as long as the job's token.
func CILogin(ctx context.Context, env map[string]string, keyType string) (*Credential, error) {
	signer, alg := NewKey(keyType)
	res, err := provider.CILogin(ctx, provider.CIOptions{Signer: signer, Alg: alg, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		return nil, err
	}
	compact, err := res.PKToken.Compact()
	if err != nil {
		return nil, err
	}
	return Wrap(signer, compact, res.Claims.IssuedAt.Add(-time.Minute), res.Claims.Expiry)
}

// ActionsEnv is the environment of a GitHub (or Forgejo) job of op holding requestToken.
func ActionsEnv(op *testop.Server, requestToken string) map[string]string {
	return map[string]string{provider.EnvActionsTokenURL: op.ActionsTokenURL(), provider.EnvActionsTokenToken: requestToken, "GITHUB_ACTIONS": "true"}
}

// Commitment stands, as a claim value given to ForgeCI, for the commitment to the signer's key.
const Commitment = "\x00commitment"

// ForgeCI mints a CI PK token for claims with op's key, committing to signer: "aud" is set to
// the commitment unless claims has one, and a claim whose value is Commitment gets it (e.g. a
// nonce, for a GQ-signed browser login); gq false leaves the OP's RS256 signature in place; a
// non-empty cic puts that value in the GQ header (GitLab's binding; "self" for the commitment).
func ForgeCI(op *testop.Server, signer crypto.Signer, alg string, claims map[string]any, gq bool, cic string) ([]byte, error) {
	ci, commitment, err := provider.NewClientInstance(signer, alg)
	if err != nil {
		return nil, err
	}
	c := map[string]any{}
	for k, v := range claims {
		if v == Commitment {
			v = commitment
		}
		c[k] = v
	}
	if _, ok := c["aud"]; !ok {
		c["aud"] = commitment
	}
	idt, err := op.SignIDToken(c)
	if err != nil {
		return nil, err
	}
	tok := []byte(idt)
	if gq {
		_, _, key := op.SigningKey()
		extra := map[string]string{}
		if cic == "self" {
			cic = commitment
		}
		if cic != "" {
			extra["cic"] = cic
		}
		if tok, err = gqsig.SignJWT(key.Public().(*rsa.PublicKey), tok, extra); err != nil {
			return nil, err
		}
	}
	cicToken, err := ci.Sign(signer, alg, tok)
	if err != nil {
		return nil, err
	}
	pkt, err := pktoken.New(tok, cicToken)
	if err != nil {
		return nil, err
	}
	return pkt.Compact()
}
