package certstatus_test

import (
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
)

func TestOf(t *testing.T) {
	op, err := testop.Start(testop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	iat := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	signer, alg := logintest.NewKey("ecdsa")
	compact, err := logintest.Forge(op, signer, alg, logintest.Claims(op, "alice", "alice@example.com", iat))
	if err != nil {
		t.Fatal(err)
	}
	bounded, err := logintest.Wrap(signer, compact, iat.Add(-time.Minute), iat.Add(8*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Other clients leave the validity open: iat + 24h is assumed.
	open, err := logintest.Wrap(signer, compact, iat, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cred *logintest.Credential
		now  time.Time
		want certstatus.State
	}{
		{"valid", bounded, iat.Add(time.Hour), certstatus.Valid},
		{"expiring", bounded, iat.Add(8*time.Hour - 4*time.Minute), certstatus.Expiring},
		{"at the end", bounded, iat.Add(8 * time.Hour), certstatus.Expired},
		{"not yet valid", bounded, iat.Add(-time.Hour), certstatus.Expired},
		{"open, young", open, iat.Add(23 * time.Hour), certstatus.Valid},
		{"open, old", open, iat.Add(25 * time.Hour), certstatus.Expired},
	} {
		st := certstatus.Of(tc.cred.Cert, tc.now, 5*time.Minute)
		if st.State != tc.want || st.Identity != "alice@example.com" || st.Issuer != op.Issuer() {
			t.Errorf("%s: got %+v, want %s", tc.name, st, tc.want)
		}
	}
	best := certstatus.Best([]certstatus.Status{{State: certstatus.Missing}, {State: certstatus.Valid, Remaining: time.Hour}, {State: certstatus.Valid, Remaining: 2 * time.Hour}, {State: certstatus.Expired}})
	if best.State != certstatus.Valid || best.Remaining != 2*time.Hour {
		t.Errorf("Best = %+v", best)
	}
}
