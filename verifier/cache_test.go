package verifier

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
	var names []string
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".lock") { // the fetch lock stays, empty, by design
			names = append(names, f.Name())
		}
	}
	if len(names) != 1 {
		t.Fatalf("cache dir holds %q, want one entry (temporary files left behind?)", names)
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
		{-1, time.Hour}, {0, 5 * time.Minute}, {time.Second, 5 * time.Minute}, {2 * time.Hour, 2 * time.Hour}, {90 * 24 * time.Hour, 24 * time.Hour},
	} {
		if got := c.ttl(tc.maxAge); got != tc.want {
			t.Errorf("ttl(%s) = %s, want %s", tc.maxAge, got, tc.want)
		}
	}
	for cc, want := range map[string]time.Duration{
		"max-age=600": 10 * time.Minute, "public, max-age=60": time.Minute, "no-store": 0, "no-cache": 0, "max-age=0": 0,
		"private, no-cache, max-age=3600": 0, "": -1, "max-age=x": -1, "public": -1, "max-age=-5": -1,
	} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %s, want %s", cc, got, want)
		}
	}
}

// A key the OP rotated in moments after a regular fetch is found at once: the rate limit counts
// from the last refetch made for a miss, not from the last fetch.
func TestCacheRotationRightAfterAFetch(t *testing.T) {
	op, p, clk, dir := cacheFixture(t)
	mustKeys(t, newCache(dir, clk), p, currentKID(op), KeySourceNetwork)
	op.RotateKeys()
	clk.Add(time.Second)
	mustKeys(t, newCache(dir, clk), p, currentKID(op), KeySourceNetwork)
	// A second rotation within RetryAfter of that miss refetch waits for the limit.
	op.RotateKeys()
	clk.Add(time.Second)
	if set, _, _ := newCache(dir, clk).Keys(context.Background(), p, currentKID(op)); hasKID(set, currentKID(op)) {
		t.Fatal("a second miss within RetryAfter refetched")
	}
	clk.Add(DefaultRetryAfter)
	mustKeys(t, newCache(dir, clk), p, currentKID(op), KeySourceNetwork)
}

// The freshness an OP's Cache-Control buys: "do not keep" gets the minimum, not the default.
func TestCacheControlFreshness(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"no-store": DefaultMinTTL, "no-cache": DefaultMinTTL, "max-age=0": DefaultMinTTL,
		"max-age=60": DefaultMinTTL, "max-age=7200": 2 * time.Hour, "": DefaultTTL, "max-age=9999999": DefaultMaxTTL,
	} {
		srv := httptest.NewServer(nil)
		jwks := `{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/.well-known/openid-configuration":
				fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, srv.URL, srv.URL+"/jwks")
			case "/jwks":
				if cc != "" {
					w.Header().Set("Cache-Control", cc)
				}
				io.WriteString(w, jwks)
			}
		})
		clk := &clock{t: time.Now()}
		c := newCache("", clk)
		p := &policy.Provider{Name: "cc", Issuer: srv.URL, ClientIDs: []string{"x"}}
		mustKeys(t, c, p, "k", KeySourceNetwork)
		c.mu.Lock()
		got := c.entries[p.Issuer].FreshUntil.Sub(clk.Now())
		c.mu.Unlock()
		srv.Close()
		if got != want {
			t.Errorf("Cache-Control %q: fresh for %s, want %s", cc, got, want)
		}
	}
}

// A failed fetch with nothing cached is recorded on disk, so that the next process fails at once
// instead of waiting for the OP again, until RetryAfter has passed.
func TestCacheOutageRememberedAcrossProcesses(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	p := &policy.Provider{Name: "down", Issuer: srv.URL, ClientIDs: []string{"x"}}
	proc := func() *Cache {
		return &Cache{Dir: dir, Now: clk.Now, Fetcher: Fetcher{Timeout: 300 * time.Millisecond}}
	}
	start := time.Now()
	if _, _, err := proc().Keys(context.Background(), p, "k"); err == nil {
		t.Fatal("keys from a hanging OP")
	}
	first := time.Since(start)
	entries, _ := ReadCacheDir(dir)
	if len(entries) != 1 || entries[0].LastFailure.IsZero() || entries[0].LastError == "" {
		t.Fatalf("no failure record on disk: %+v", entries)
	}
	start = time.Now()
	_, _, err := proc().Keys(context.Background(), p, "k")
	if err == nil || !strings.Contains(err.Error(), "failed") {
		t.Fatalf("second process: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("second process waited %s for the OP (first: %s)", d, first)
	}
	// After RetryAfter the next process tries the OP again (and waits for its timeout).
	clk.Add(DefaultRetryAfter + time.Second)
	start = time.Now()
	proc().Keys(context.Background(), p, "k")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("after RetryAfter the OP was not tried again (%s)", d)
	}
}

// Verifies started together while the OP hangs: one waits for the OP, the others give up after
// FetchWait or read the failure it recorded, never each the whole timeout.
func TestCacheConcurrentOutage(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	dir := t.TempDir()
	clk := &clock{t: time.Now()}
	p := &policy.Provider{Name: "down", Issuer: srv.URL, ClientIDs: []string{"x"}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slow int
	for range 8 {
		wg.Go(func() {
			c := &Cache{Dir: dir, Now: clk.Now, Fetcher: Fetcher{Timeout: 1500 * time.Millisecond}, FetchWait: 200 * time.Millisecond}
			start := time.Now()
			if _, _, err := c.Keys(context.Background(), p, "k"); err == nil {
				t.Error("keys from a hanging OP")
			}
			if time.Since(start) > time.Second {
				mu.Lock()
				slow++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if slow != 1 {
		t.Fatalf("%d of 8 concurrent verifies waited for the OP's timeout, want 1", slow)
	}
}
