package verifier

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
)

// clock is a settable time source shared by a cache under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func cacheFixture(t *testing.T) (*testop.Server, *policy.Provider, *clock, string) {
	t.Helper()
	op, err := testop.Start(testop.Options{Users: []testop.User{{Subject: "alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	return op, &policy.Provider{Name: "test", Issuer: op.Issuer(), ClientIDs: []string{"opkssh"}}, &clock{t: time.Now()}, dir
}

func newCache(dir string, clk *clock) *Cache {
	return &Cache{Dir: dir, Now: clk.Now}
}

func currentKID(op *testop.Server) string {
	kid, _, _ := op.SigningKey()
	return kid
}

func mustKeys(t *testing.T, c *Cache, p *policy.Provider, kid, wantSource string) {
	t.Helper()
	set, info, err := c.Keys(context.Background(), p, kid)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if info.Source != wantSource {
		t.Fatalf("source %q, want %q", info.Source, wantSource)
	}
	if kid != "" && !hasKID(set, kid) {
		t.Fatalf("key set lacks kid %s", kid)
	}
}

func TestCacheFreshServesWithoutNetwork(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	kid := currentKID(op)
	mustKeys(t, newCache(dir, clk), p, kid, KeySourceNetwork)
	before := op.Requests("/jwks") + op.Requests("/.well-known/openid-configuration")
	// A new process (a new Cache value) reads the file.
	for i := 0; i < 5; i++ {
		mustKeys(t, newCache(dir, clk), p, kid, KeySourceCache)
	}
	if after := op.Requests("/jwks") + op.Requests("/.well-known/openid-configuration"); after != before {
		t.Fatalf("fresh cache hit the OP %d times", after-before)
	}
	// The test OP sends max-age=300, so the entry is fresh for 5 minutes.
	clk.Add(6 * time.Minute)
	mustKeys(t, newCache(dir, clk), p, kid, KeySourceNetwork)
}

func TestCacheStaleUsableWhileOPDownThenRefused(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	kid := currentKID(op)
	mustKeys(t, newCache(dir, clk), p, kid, KeySourceNetwork)
	op.Close()
	clk.Add(2 * time.Hour) // past freshness
	mustKeys(t, newCache(dir, clk), p, kid, KeySourceStale)
	clk.Add(69 * time.Hour) // 71h after the fetch: still inside the 72h window
	mustKeys(t, newCache(dir, clk), p, kid, KeySourceStale)
	clk.Add(2 * time.Hour) // 73h: past it
	if _, _, err := newCache(dir, clk).Keys(context.Background(), p, kid); err == nil {
		t.Fatal("keys past the stale window were served")
	}
}

func TestCacheOPDownWithoutEntry(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	op.Close()
	if _, _, err := newCache(dir, clk).Keys(context.Background(), p, "x"); err == nil {
		t.Fatal("no error with the OP down and nothing cached")
	}
}

func TestCacheKidMissRefetchesRateLimited(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	mustKeys(t, newCache(dir, clk), p, currentKID(op), KeySourceNetwork)
	op.RotateKeys()
	newKID := currentKID(op)
	clk.Add(time.Minute) // past RetryAfter since the first fetch
	mustKeys(t, newCache(dir, clk), p, newKID, KeySourceNetwork)

	// A flood of unknown kids: at most one refetch per RetryAfter.
	before := op.Requests("/jwks")
	for i := 0; i < 50; i++ {
		set, _, err := newCache(dir, clk).Keys(context.Background(), p, "bogus-kid")
		if err != nil || hasKID(set, "bogus-kid") {
			t.Fatalf("bogus kid: err=%v", err)
		}
	}
	if n := op.Requests("/jwks") - before; n != 0 {
		t.Fatalf("%d JWKS fetches within RetryAfter of the last fetch, want 0", n)
	}
	clk.Add(31 * time.Second)
	for i := 0; i < 50; i++ {
		newCache(dir, clk).Keys(context.Background(), p, "bogus-kid")
	}
	if n := op.Requests("/jwks") - before; n != 1 {
		t.Fatalf("%d JWKS fetches after RetryAfter passed, want 1", n)
	}
}

func TestCachePinnedJWKSNeverFetches(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	resp, err := http.Get(op.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	p.JWKSFile = filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(p.JWKSFile, data, 0o644)
	before := op.Requests("/jwks")
	mustKeys(t, newCache(dir, clk), p, currentKID(op), KeySourcePinned)
	if op.Requests("/jwks") != before {
		t.Fatal("pinned keys touched the network")
	}
	if entries, _ := ReadCacheDir(dir); len(entries) != 0 {
		t.Fatal("pinned keys were cached")
	}
}

func TestCacheCorruptFileIsDiscarded(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	kid := currentKID(op)
	for _, junk := range []string{"{not json", `{"version":1,"issuer":"` + op.Issuer() + `","jwks":{"keys":"x"}}`, ""} {
		if err := os.WriteFile(filepath.Join(dir, CacheFileName(op.Issuer())), []byte(junk), 0o600); err != nil {
			t.Fatal(err)
		}
		mustKeys(t, newCache(dir, clk), p, kid, KeySourceNetwork)
		mustKeys(t, newCache(dir, clk), p, kid, KeySourceCache)
	}
}

func TestCacheConcurrentWriters(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	kid := currentKID(op)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Cache values act like separate verify processes sharing the directory.
			c := newCache(dir, clk)
			if _, _, err := c.Keys(context.Background(), p, kid); err != nil {
				errs <- err
			}
			if e := c.readFile(p.Issuer); e == nil {
				errs <- os.ErrNotExist
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent verify: %v", err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 {
		t.Fatalf("cache dir holds %d files, want 1 (temporary files left behind?)", len(files))
	}
}

func TestCacheUnsafeDirFallsBackToMemory(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	os.Chmod(dir, 0o777)
	c := newCache(dir, clk)
	mustKeys(t, c, p, currentKID(op), KeySourceNetwork)
	mustKeys(t, c, p, currentKID(op), KeySourceCache) // memory, same process
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatal("wrote into a world-writable cache directory")
	}
}

func TestCacheTTLClamp(t *testing.T) {
	c := &Cache{}
	for _, tc := range []struct{ maxAge, want time.Duration }{
		{0, time.Hour}, {time.Second, 5 * time.Minute}, {2 * time.Hour, 2 * time.Hour}, {90 * 24 * time.Hour, 24 * time.Hour},
	} {
		if got := c.ttl(tc.maxAge); got != tc.want {
			t.Errorf("ttl(%s) = %s, want %s", tc.maxAge, got, tc.want)
		}
	}
	for cc, want := range map[string]time.Duration{"max-age=600": 10 * time.Minute, "public, max-age=60": time.Minute, "no-store": 0, "": 0, "max-age=x": 0} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %s, want %s", cc, got, want)
		}
	}
}
