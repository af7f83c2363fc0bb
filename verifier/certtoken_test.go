package verifier

import (
	"context"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/policy"
)

func TestVerifyCertToken(t *testing.T) {
	f := setup(t)
	pol, _ := policyFor(t, f.op.Issuer(), "")()
	ctx := context.Background()
	cert := f.alice.Cert
	inside := time.Unix(int64(cert.ValidAfter), 0).Add(time.Hour)

	id, err := VerifyCertToken(ctx, cert, CertTokenOptions{Policy: pol})
	if err != nil {
		t.Fatalf("no time: %v", err)
	}
	if id.Email != "alice@example.com" || id.Provider != "test" || id.Issuer != f.op.Issuer() {
		t.Fatalf("identity = %+v", id)
	}
	if _, err := VerifyCertToken(ctx, cert, CertTokenOptions{Policy: pol, At: inside}); err != nil {
		t.Fatalf("inside validity: %v", err)
	}
	// A time after the certificate's end, or before its start, is refused with its own reason.
	for _, at := range []time.Time{time.Unix(int64(cert.ValidBefore), 0).Add(time.Second), time.Unix(int64(cert.ValidAfter), 0).Add(-time.Second)} {
		_, err := VerifyCertToken(ctx, cert, CertTokenOptions{Policy: pol, At: at})
		if Reason(err) != ReasonSignedOutsideValidity {
			t.Errorf("at %s: %v (reason %s)", at, err, Reason(err))
		}
	}
	// Another OP's token: its issuer is no provider of the policy.
	other, _ := policyFor(t, "https://other.example.com", "")()
	if _, err := VerifyCertToken(ctx, cert, CertTokenOptions{Policy: other}); Reason(err) != ReasonUnknownIssuer {
		t.Errorf("other issuer: %v", err)
	}
	// A certificate carrying alice's PK token but another key: the commitment does not hold.
	signer, _ := logintest.NewKey("ecdsa")
	forged, err := logintest.Wrap(signer, f.alice.PKToken, time.Unix(int64(cert.ValidAfter), 0), time.Unix(int64(cert.ValidBefore), 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCertToken(ctx, forged.Cert, CertTokenOptions{Policy: pol}); Reason(err) != ReasonKeyMismatch {
		t.Errorf("other key: %v", err)
	}
	// Wrong audience.
	aud, _ := policy2(t, f.op.Issuer(), "someone-else")
	if _, err := VerifyCertToken(ctx, cert, CertTokenOptions{Policy: aud}); Reason(err) != ReasonAudience {
		t.Errorf("audience: %v", err)
	}
}

func policy2(t *testing.T, issuer, clientID string) (*policy.Policy, error) {
	t.Helper()
	return policy.Parse("p.yaml", []byte("version: 1\nproviders:\n  test:\n    issuer: "+issuer+"\n    client_ids: ["+clientID+"]\n    expiration: 24h\n"))
}
