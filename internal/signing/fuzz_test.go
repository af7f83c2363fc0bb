package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshsig"
	"github.com/opkssh-team/opkssh/policy"
)

// FuzzVerify feeds arbitrary signature files through the whole check (SSHSIG, certificate, PK
// token, OP signature against an empty key set): every input is refused with a reason, none
// panics, and none is accepted.
func FuzzVerify(f *testing.F) {
	signer, _ := logintest.NewKey("ecdsa")
	// A certificate with a syntactically plausible PK token, so that mutations reach its parser.
	token := []byte("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL29wLmV4YW1wbGUiLCJzdWIiOiJhIn0.c2ln:eyJhbGciOiJFUzI1NiIsInR5cCI6IkNJQyJ9.c2ln")
	cred, err := logintest.Wrap(signer, token, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	sshSigner, _ := ssh.NewSignerFromSigner(signer)
	s, err := sshsig.Sign(rand.Reader, sshSigner, cred.Cert, "file", bytes.NewReader([]byte("m")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sshsig.Armor(s.Marshal()))
	f.Add([]byte(base64.StdEncoding.EncodeToString(s.Marshal())))
	pol := &policy.Policy{Providers: map[string]*policy.Provider{"op": {Name: "op", Issuer: "https://op.example", ClientIDs: []string{"opkssh"}}}}
	trust := Trust{Policy: pol, RequireSigner: true, Keys: PinnedKeys{Set: jwk.NewSet()}}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(context.Background(), data, bytes.NewReader([]byte("m")), "file", time.Time{}, trust)
		if err == nil {
			t.Fatalf("accepted without any OP key: %+v", res)
		}
		if ReasonOf(err) == "" {
			t.Fatalf("refusal without a reason: %v", err)
		}
	})
}
