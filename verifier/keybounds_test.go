package verifier

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
)

// A PK token whose client instance claims name a 100,000-bit RSA key with exponent 2^31-1, in a
// certificate of an ordinary key: no private key is needed to send it, and checking the client
// signature with that key would cost seconds of CPU. Verify must refuse it before any signature.
func TestHugeClientKeyRefusedBeforeAnySignature(t *testing.T) {
	f := setup(t)
	parts := strings.Split(string(f.alice.PKToken), ":")
	hdrJSON, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		t.Fatal(err)
	}
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100_000))
	n.SetBit(n, 99_999, 1)
	n.SetBit(n, 0, 1)
	e := big.NewInt(1<<31 - 1)
	hdr["alg"] = "RS256"
	hdr["upk"] = map[string]any{"kty": "RSA", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(n.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e.Bytes())}
	newHdr, _ := json.Marshal(hdr)
	parts[3] = base64.RawURLEncoding.EncodeToString(newHdr)
	c, err := logintest.Wrap(f.alice.Signer, []byte(strings.Join(parts, ":")), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{LoadPolicy: policyFor(t, f.op.Issuer(), "")}
	start := time.Now()
	res := run(t, opts, "alice", c)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("refusing took %s", d)
	}
	if res.Allowed || res.Reason != ReasonKeyMismatch {
		t.Fatalf("huge client key: %s %s", res.Reason, res.Detail)
	}
}
