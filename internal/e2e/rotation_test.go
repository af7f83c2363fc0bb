package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/verifier"
)

// TestKeyRotationAndCacheControl runs the real binary as sshd does against an OP that says
// "Cache-Control: no-store" on its JWKS and rotates its signing key right after a verify fetched
// its keys: the entry is kept for the minimum freshness (5 minutes, not the 1 hour default), and
// a login with the new key is allowed at once instead of being refused for the rate-limit window.
func TestKeyRotationAndCacheControl(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run this as root")
		}
		t.Skip("needs root to run verify as nobody")
	}
	op, err := testop.Start(testop.Options{
		Users:  []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}},
		Quirks: testop.Quirks{JWKSCacheControl: "no-store"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	in := nobodyInstall(t)
	if err := in.WritePolicy(policy(op.Issuer(), advRules)); err != nil {
		t.Fatal(err)
	}
	verify := func(keyPath, wantKeys string) {
		t.Helper()
		b64, typ := certArgs(t, keyPath)
		log := nobodyLog(t, in)
		stdout, code := verifyAsSSHD(t, "--policy", in.Policy, "--cache-dir", in.Cache, "--log-file", log, "--", "alice", b64, typ)
		_, decision := decisionLog(t, log)
		if code != 0 || stdout == "" || decision["keys"] != wantKeys {
			t.Fatalf("want allowed with keys %q: exit %d, %v", wantKeys, code, decision)
		}
	}

	first := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id1"))
	verify(first, verifier.KeySourceNetwork)
	verify(first, verifier.KeySourceCache)
	entries, err := verifier.ReadCacheDir(in.Cache)
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache: %v %+v", err, entries)
	}
	if fresh := entries[0].FreshUntil.Sub(entries[0].FetchedAt); fresh != verifier.DefaultMinTTL {
		t.Fatalf("no-store keys are fresh for %s, want the minimum %s", fresh, verifier.DefaultMinTTL)
	}

	op.RotateKeys()
	second := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id2"))
	verify(second, verifier.KeySourceNetwork) // well within RetryAfter of the last fetch
	verify(second, verifier.KeySourceCache)
	verify(first, verifier.KeySourceCache) // the old key is still published
	if since := time.Since(entries[0].FetchedAt); since > verifier.DefaultRetryAfter {
		t.Fatalf("the test took %s, longer than the rate-limit window it tests", since)
	}
}
