package verifier

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
)

// fuzzFixture is one honest certificate and the options under which it is allowed as alice. The
// OP's keys are pinned with jwks_file, so no input can reach the network, and the clock is fixed.
type fuzzFixture struct {
	opts    Options
	signer  crypto.Signer
	alg     string
	honest  *logintest.Credential
	line    string   // the line the honest certificate earns
	forged  [][]byte // PK tokens for the same key with claims the policy refuses, as seeds
	fresh   []byte   // a refreshed ID token that continues the honest login (bound by its nonce)
	meaning []string // tokenMeaning of the honest PK token
}

func newFuzzFixture(f *testing.F) *fuzzFixture {
	f.Helper()
	op, err := testop.Start(testop.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer op.Close()
	resp, err := http.Get(op.Issuer() + "/jwks")
	if err != nil {
		f.Fatal(err)
	}
	jwks, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		f.Fatal(err)
	}
	jwksPath := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksPath, jwks, 0o644); err != nil {
		f.Fatal(err)
	}
	pol, err := policy.Parse("fuzz.yaml", []byte(fmt.Sprintf(`version: 1
providers:
  test:
    issuer: %s
    client_ids: [opkssh]
    expiration: 24h
    jwks_file: %s
rules:
  - principals: [alice]
    provider: test
    identities:
      - email: alice@example.com
`, op.Issuer(), jwksPath)))
	if err != nil {
		f.Fatal(err)
	}

	now := time.Now().Truncate(time.Second)
	fx := &fuzzFixture{opts: Options{
		LoadPolicy: func() (*policy.Policy, error) { return pol, nil },
		Keys:       Fetcher{Timeout: time.Millisecond},
		Now:        func() time.Time { return now },
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}}
	fx.signer, fx.alg = logintest.NewKey("ecdsa")
	forge := func(edit func(map[string]any)) []byte {
		c := logintest.Claims(op, "alice", "alice@example.com", now)
		edit(c)
		compact, err := logintest.Forge(op, fx.signer, fx.alg, c)
		if err != nil {
			f.Fatal(err)
		}
		return compact
	}
	fx.honest, err = logintest.Wrap(fx.signer, forge(func(map[string]any) {}), time.Time{}, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	var honestClaims map[string]any
	body, _, _ := strings.Cut(string(fx.honest.PKToken), ":")
	payload, _ := base64.RawURLEncoding.DecodeString(body)
	if err := json.Unmarshal(payload, &honestClaims); err != nil {
		f.Fatal(err)
	}
	fresh, err := op.SignIDToken(honestClaims)
	if err != nil {
		f.Fatal(err)
	}
	fx.fresh = []byte(fresh)
	fx.meaning = tokenMeaning(fx.honest.PKToken)
	fx.line = authorizedKeysLine(sshcert.WildcardPrincipal, nil, fx.honest.Cert.Key)
	fx.forged = [][]byte{
		forge(func(c map[string]any) { c["iat"] = now.Add(-25 * time.Hour).Unix() }),
		forge(func(c map[string]any) { c["aud"] = []string{"x", "y"} }),
		forge(func(c map[string]any) { c["email_verified"] = "true" }),
		forge(func(c map[string]any) { c["nonce"] = "AAAA" }),
		forge(func(c map[string]any) { c["iss"] = "https://other.example.com" }),
	}
	if res := Verify(context.Background(), fx.opts, Request{Principal: "alice", KeyType: fx.honest.Type, CertB64: fx.honest.CertB64}); !res.Allowed {
		f.Fatalf("the honest seed is denied: %s %s", res.Reason, res.Detail)
	}
	refreshed, err := logintest.Wrap(fx.signer, append(append(slices.Clone(fx.honest.PKToken), '.'), fx.fresh...), time.Time{}, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	if res := Verify(context.Background(), fx.opts, Request{Principal: "alice", KeyType: refreshed.Type, CertB64: refreshed.CertB64}); !res.Allowed || !res.Refreshed {
		f.Fatalf("the refreshed seed is not allowed as refreshed: %s %s", res.Reason, res.Detail)
	}
	return fx
}

// check runs Verify and enforces the invariants: no panic (Verify turns one into a denial whose
// detail starts with "internal error"), a line exactly when allowed, and no allowed request other
// than the honest certificate as alice.
func (fx *fuzzFixture) check(t *testing.T, req Request) Result {
	t.Helper()
	res := Verify(context.Background(), fx.opts, req)
	if strings.HasPrefix(res.Detail, "internal error") {
		t.Fatalf("Verify panicked: %s", res.Detail)
	}
	if res.Allowed != (res.Line != "") || res.Allowed != (res.Reason == ReasonAllowed) || res.Reason == "" {
		t.Fatalf("inconsistent result %+v", res)
	}
	if res.Allowed && (req.Principal != "alice" || req.KeyType != fx.honest.Type || res.Line != fx.line || !fx.sameCert(req.CertB64)) {
		t.Fatalf("allowed a request that is not the honest certificate as alice: %q %q %q -> %s", req.Principal, req.KeyType, req.CertB64, res.Line)
	}
	return res
}

// sameCert reports whether b64 is the honest certificate's key carrying a PK token with the same
// meaning. The certificate's own signature may differ (verify re-checks it, and ECDSA signatures
// are not unique).
func (fx *fuzzFixture) sameCert(b64 string) bool {
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return false
	}
	cert, ok := pub.(*ssh.Certificate)
	return ok && bytes.Equal(cert.Key.Marshal(), fx.honest.Cert.Key.Marshal()) &&
		fx.sameToken([]byte(cert.Permissions.Extensions[sshcert.ExtensionPKToken]))
}

func (fx *fuzzFixture) sameToken(raw []byte) bool {
	m := tokenMeaning(raw)
	return len(m) == len(fx.meaning) && strings.Join(m, "\x00") == strings.Join(fx.meaning, "\x00")
}

// tokenMeaning decodes a compact PK token (payload:header:sig:header:sig) into its payload and its
// signatures in a fixed order. Two tokens mean the same if they differ only in the order of the
// signatures (the library sorts them by typ), in how a segment is base64-encoded (alphabet,
// padding, unused trailing bits), or in a refreshed ID token after '.', which at most extends the
// life of the same login (and the fixture's honest login has not expired).
func tokenMeaning(raw []byte) []string {
	tokens, _, _ := bytes.Cut(raw, []byte("."))
	segs := bytes.Split(tokens, []byte(":"))
	var sigs []string
	for i := 1; i+1 < len(segs); i += 2 {
		sigs = append(sigs, decodeLoose(string(segs[i]))+"\x00"+decodeLoose(string(segs[i+1])))
	}
	if len(segs)%2 == 0 {
		sigs = append(sigs, decodeLoose(string(segs[len(segs)-1])))
	}
	slices.Sort(sigs)
	return append([]string{decodeLoose(string(segs[0]))}, sigs...)
}

func decodeLoose(s string) string {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return "b64:" + string(b)
		}
	}
	return "raw:" + s
}

// FuzzVerify feeds arbitrary %u, %t and %k to Verify.
func FuzzVerify(f *testing.F) {
	fx := newFuzzFixture(f)
	h := fx.honest
	f.Add("alice", h.Type, h.CertB64)
	f.Add("root", h.Type, h.CertB64)
	f.Add("alice", ssh.CertAlgoED25519v01, h.CertB64)
	f.Add("alice", h.Type, h.CertB64[:len(h.CertB64)/2])
	f.Add("alice", "ecdsa-sha2-nistp256", base64.StdEncoding.EncodeToString(h.Cert.Key.Marshal()))
	f.Add("", "", "")
	f.Add("-alice", h.Type, "\n"+h.CertB64)
	for _, pkt := range fx.forged {
		c, err := logintest.Wrap(fx.signer, pkt, time.Time{}, time.Time{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add("alice", c.Type, c.CertB64)
	}
	f.Fuzz(func(t *testing.T, principal, keyType, certB64 string) {
		fx.check(t, Request{Principal: principal, KeyType: keyType, CertB64: certB64})
	})
}

// FuzzPKTokenExtension mutates only the PK token inside an otherwise valid certificate, signed
// by the key the honest token commits to, so that mutations reach the token checks.
func FuzzPKTokenExtension(f *testing.F) {
	fx := newFuzzFixture(f)
	pkt := fx.honest.PKToken
	f.Add(pkt)
	for _, p := range fx.forged {
		f.Add(p)
	}
	parts := bytes.Split(pkt, []byte(":"))
	f.Add(bytes.Join([][]byte{parts[0], parts[3], parts[4], parts[1], parts[2]}, []byte(":"))) // CIC first
	f.Add(bytes.Join(append(parts, parts[3], parts[4]), []byte(":")))                          // a third signature
	f.Add(bytes.Join([][]byte{parts[0], parts[1], []byte("AAAA"), parts[1], parts[2], parts[3], parts[4]}, []byte(":")))
	f.Add(bytes.Join(parts[:3], []byte(":")))                                                  // no client signature
	f.Add(bytes.Join([][]byte{parts[0], parts[1], parts[2], parts[1], parts[2]}, []byte(":"))) // two OP signatures
	f.Add(append(append([]byte{}, pkt...), ".e30.e30.c2ln"...))                                // a refreshed ID token
	f.Add(append(append(append([]byte{}, pkt...), '.'), fx.fresh...))                          // a valid one
	f.Add([]byte("e30:e30:c2ln:e30:c2ln"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := logintest.Wrap(fx.signer, raw, time.Time{}, time.Time{})
		if err != nil {
			return // empty or over sshcert.MaxPKToken: sshcert refuses to make it
		}
		res := fx.check(t, Request{Principal: "alice", KeyType: c.Type, CertB64: c.CertB64})
		if res.Allowed && !fx.sameToken(raw) {
			t.Fatalf("allowed a mutated PK token %q", raw)
		}
	})
}

// TestVerifyOversizedCert sends a 1 MiB %k, which no process can receive as one argument on Linux
// (the adversarial e2e suite sends the longest one exec allows).
func TestVerifyOversizedCert(t *testing.T) {
	opts := Options{LoadPolicy: func() (*policy.Policy, error) { t.Fatal("policy loaded for a 1 MiB certificate"); return nil, nil }}
	res := Verify(context.Background(), opts, Request{Principal: "alice", KeyType: ssh.CertAlgoECDSA256v01, CertB64: strings.Repeat("A", 1<<20)})
	if res.Allowed || res.Reason != ReasonCertMalformed {
		t.Fatalf("1 MiB certificate: %+v", res)
	}
}
