package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/openpubkey/openpubkey/pktoken"

	"github.com/opkssh-team/opkssh/internal/gqsig"
)

// GQSign replaces the OP's RS256 signature in a browser or device login's PK token with a GQ256
// proof of knowledge of it (login --gq). The ID token in the certificate then cannot be replayed
// to another relying party that trusts the same OP and client ID: whoever reads the certificate
// sees the proof, never the signature. The nonce commitment and the client's signature stay as
// they are (the payload does not change). Only RS256 OPs can be GQ-signed.
func GQSign(ctx context.Context, hc *http.Client, res *LoginResult) error {
	if res == nil || res.PKToken == nil {
		return errors.New("no PK token to GQ-sign")
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	pub, jkt, err := opRSAKey(ctx, hc, res.Claims.Issuer, res.PKToken.OpToken)
	if err != nil {
		return fmt.Errorf("--gq: %w", err)
	}
	gqToken, err := gqsig.SignJWT(pub, res.PKToken.OpToken, map[string]string{"jkt": jkt})
	if err != nil {
		return fmt.Errorf("--gq: GQ-signing the ID token: %w", err)
	}
	pkt, err := pktoken.New(gqToken, res.PKToken.CicToken)
	if err != nil {
		return fmt.Errorf("--gq: assembling the PK token: %w", err)
	}
	res.PKToken = pkt
	res.RefreshToken = "" // a refreshed ID token would travel with the OP's signature
	return nil
}
