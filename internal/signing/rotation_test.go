package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// TestOldSignatureAfterRotation: once the OP has rotated out the key that signed a login's token,
// a signature from that login no longer verifies against the live keys; it does with the OP's
// archived JWKS (--jwks-file), and with a server's verify cache that still holds the old key.
func TestOldSignatureAfterRotation(t *testing.T) {
	op, err := testop.Start(testop.Options{Keys: 1, Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cred, err := logintest.Login(ctx, op, "alice", "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadKey(writeKey(t, cred), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("signed before the rotation\n")
	sig, err := Sign(key, "file", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	prov := &policy.Provider{Name: "test", Issuer: op.Issuer(), ClientIDs: []string{"opkssh"}, Expiration: policy.Expiration{FromIAT: 24 * time.Hour}}
	pol := &policy.Policy{Providers: map[string]*policy.Provider{"test": prov}}

	// The archive made before the rotation, and a server cache entry holding the same keys.
	archived, err := verifier.Fetcher{}.Fetch(ctx, prov)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "jwks-archive.json")
	os.WriteFile(archive, archived.JWKS, 0o644)
	serverCache := filepath.Join(t.TempDir(), "verify-cache")
	os.Mkdir(serverCache, 0o700)
	entry, _ := json.Marshal(verifier.CacheEntry{Version: 1, Issuer: op.Issuer(), FetchedAt: time.Now(), JWKS: archived.JWKS})
	os.WriteFile(filepath.Join(serverCache, verifier.CacheFileName(op.Issuer())), entry, 0o600)

	op.RotateKeys() // Keys: 1, so the old key leaves the JWKS

	live := Trust{Policy: pol, Keys: &verifier.Cache{}}
	_, err = Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, live)
	if ReasonOf(err) != verifier.ReasonUnknownKey {
		t.Fatalf("live keys after the rotation: %v (reason %s), want %s", err, ReasonOf(err), verifier.ReasonUnknownKey)
	}
	pinned, err := ReadJWKSFiles([]string{archive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, Trust{Policy: pol, Keys: pinned}); err != nil {
		t.Fatalf("archived keys: %v", err)
	}
	fromServer := Trust{Policy: pol, Keys: ServerCacheFirst{Dir: serverCache, Fallback: failing{}}}
	res, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, fromServer)
	if err != nil {
		t.Fatalf("server cache: %v", err)
	}
	if res.Keys != verifier.KeySourceCache {
		t.Errorf("keys from %q", res.Keys)
	}
	// A server cache writable by others is not read.
	os.Chmod(serverCache, 0o777)
	if _, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, fromServer); err == nil {
		t.Error("keys were read from a world-writable cache directory")
	}
}

type failing struct{}

func (failing) Keys(context.Context, *policy.Provider, string) (jwk.Set, verifier.KeyInfo, error) {
	return nil, verifier.KeyInfo{}, errors.New("no network in this test")
}
