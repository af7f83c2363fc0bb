package verifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/filelock"
	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/trustfile"
	"github.com/opkssh-team/opkssh/policy"
)

// Cache defaults. Freshness follows the OP's Cache-Control (see Cache).
const (
	DefaultCacheDir   = "/var/cache/opkssh"
	DefaultTTL        = time.Hour
	DefaultMinTTL     = 5 * time.Minute
	DefaultMaxTTL     = 24 * time.Hour
	DefaultStaleFor   = 72 * time.Hour
	DefaultRetryAfter = 30 * time.Second
	// DefaultFetchWait bounds how long a verify waits for another verify's fetch of the same
	// issuer before it gives up: during an outage, one process waits for the OP, not each.
	DefaultFetchWait = 2 * time.Second
)

// Cache is a KeySource that keeps each issuer's discovery document and JWKS on disk, so that a
// verify process normally makes no network request at all, and logins keep working for StaleFor
// while the OP is unreachable.
//
//   - Freshness: max-age from the JWKS response's Cache-Control, clamped to [MinTTL, MaxTTL]. An
//     OP that says not to keep its keys (no-store, no-cache, max-age=0) gets MinTTL, the shortest
//     freshness, not the default; one that says nothing gets DefaultTTL.
//   - A fresh entry that knows the token's kid is used as is.
//   - A kid the entry does not know triggers a refetch (the OP rotated), at most once per
//     RetryAfter per issuer, counted from the last refetch made for a miss (not from the last
//     fetch): a new key is found at once, and a flood of tokens with made-up kids costs the OP one
//     request per RetryAfter and costs logins nothing.
//   - An entry past its freshness is refetched; if the OP cannot be reached, the entry is used up
//     to StaleFor after it was fetched, and the decision log says "keys":"stale".
//   - A failed fetch is recorded on disk, even for an issuer with nothing cached, and for
//     RetryAfter afterwards logins of that issuer fail (or use stale keys) at once instead of
//     waiting for the OP again. One process fetches an issuer at a time; the others wait for it
//     up to FetchWait and then use what it recorded.
//   - Pinned keys (jwks_file) never touch the network or the cache.
//
// Entries are written to a temporary file and renamed, so concurrent verifies never read a torn
// file; an entry that does not parse is discarded and refetched. The directory must be owned by
// the verify user (or root) and not writable by group or others; otherwise, or when Dir is empty,
// the cache lives in memory for this process only, and KeyInfo.Note says why (the decision log
// carries it).
type Cache struct {
	Dir        string
	Fetcher    Fetcher
	Now        func() time.Time
	DefaultTTL time.Duration
	MinTTL     time.Duration
	MaxTTL     time.Duration
	StaleFor   time.Duration
	RetryAfter time.Duration
	FetchWait  time.Duration
	Log        *slog.Logger

	once    sync.Once
	dirOK   bool
	note    string // why the cache is memory-only, reported in each KeyInfo
	mu      sync.Mutex
	entries map[string]*CacheEntry
}

// CacheEntry is one issuer's cached documents, as stored on disk. An entry may hold no keys at
// all: it then only records a failed fetch.
type CacheEntry struct {
	Version       int             `json:"version"`
	Issuer        string          `json:"issuer"`
	FetchedAt     time.Time       `json:"fetched_at"`
	FreshUntil    time.Time       `json:"fresh_until"`
	LastAttempt   time.Time       `json:"last_attempt"` // last fetch attempt, successful or not
	LastError     string          `json:"last_error,omitempty"`
	LastFailure   time.Time       `json:"last_failure,omitzero"`    // last failed fetch attempt
	LastMissFetch time.Time       `json:"last_miss_fetch,omitzero"` // last fetch made for an unknown kid
	JWKSURI       string          `json:"jwks_uri,omitempty"`
	Discovery     json.RawMessage `json:"discovery,omitempty"`
	JWKS          json.RawMessage `json:"jwks,omitempty"`
}

const cacheVersion = 1

// Keys implements KeySource.
func (c *Cache) Keys(ctx context.Context, p *policy.Provider, kid string) (jwk.Set, KeyInfo, error) {
	set, info, err := c.keys(ctx, p, kid)
	info.Note = c.note
	return set, info, err
}

// plan is what to do with an entry for a token's kid.
type plan int

const (
	planUse      plan = iota // serve the entry's keys
	planFallback             // do not fetch now: serve what is there, stale or not, or fail
	planFetch                // fetch from the OP
)

func (c *Cache) plan(e *CacheEntry, set jwk.Set, kid string, now time.Time) (plan, bool) {
	fresh := e != nil && set != nil && now.Before(e.FreshUntil)
	switch {
	case fresh && (kid == "" || hasKID(set, kid)):
		return planUse, false
	case fresh:
		// The OP may have rotated: refetch, unless a refetch for a miss was made recently.
		if now.Sub(e.LastMissFetch) < c.retryAfter() {
			return planFallback, true
		}
		return planFetch, true
	case e != nil && now.Sub(e.LastFailure) < c.retryAfter():
		return planFallback, false // a fetch failed moments ago: don't make this login wait for the OP too
	}
	return planFetch, false
}

func (c *Cache) keys(ctx context.Context, p *policy.Provider, kid string) (jwk.Set, KeyInfo, error) {
	if p.JWKSFile != "" {
		set, err := c.Fetcher.pinnedKeys(p)
		return set, KeyInfo{Source: KeySourcePinned}, err
	}
	if p.CAFile != "" {
		// Cached keys were fetched through ca_file's roots: if others can now write it, they may
		// have been fetched from an impostor, so the provider is broken whether or not we fetch.
		if err := trustfile.Check(p.CAFile, trustfile.Rules{TrustedUIDs: c.Fetcher.TrustedUIDs, What: "ca_file"}); err != nil {
			return nil, KeyInfo{}, err
		}
	}
	c.init()
	e, set := c.load(p.Issuer)
	pl, miss := c.plan(e, set, kid, c.now())
	if pl == planFetch {
		// One process fetches an issuer at a time. One that had to wait reads what the other
		// recorded and decides again; if the wait ran out, it does not fetch too.
		unlock, waited, ok := c.lockFetch(p.Issuer)
		if unlock != nil {
			defer unlock()
		}
		if waited {
			e, set = c.reload(p.Issuer)
			pl, miss = c.plan(e, set, kid, c.now())
		}
		if pl == planFetch && !ok {
			return c.fallback(e, set, c.now(), errors.New("another verify is fetching this OP's keys and did not finish in time"))
		}
	}
	now := c.now()
	switch pl {
	case planUse:
		return set, KeyInfo{Source: KeySourceCache, FetchedAt: e.FetchedAt}, nil
	case planFallback:
		cause := errors.New("refetch rate-limited")
		if e.LastError != "" && now.Sub(e.LastFailure) < c.retryAfter() {
			cause = fmt.Errorf("the last fetch, %s ago, failed: %s; next attempt after %s", now.Sub(e.LastFailure).Round(time.Second), e.LastError, c.retryAfter())
		}
		return c.fallback(e, set, now, cause)
	}
	fetched, ferr := c.Fetcher.Fetch(ctx, p)
	if ferr != nil {
		ne := &CacheEntry{Version: cacheVersion, Issuer: p.Issuer}
		if e != nil {
			*ne = *e
		}
		ne.LastAttempt, ne.LastFailure, ne.LastError = now, now, ferr.Error()
		if miss {
			ne.LastMissFetch = now
		}
		c.store(ne)
		return c.fallback(ne, set, now, ferr)
	}
	fresh, skipped, err := parseJWKSReport(fetched.JWKS)
	if err != nil {
		return c.fallback(e, set, now, err)
	}
	for _, s := range skipped {
		c.logger().Warn("JWKS key left out", "issuer", p.Issuer, "key", s)
	}
	ne := &CacheEntry{
		Version: cacheVersion, Issuer: p.Issuer, FetchedAt: now, FreshUntil: now.Add(c.ttl(fetched.MaxAge)),
		LastAttempt: now, JWKSURI: fetched.JWKSURI, Discovery: fetched.Discovery, JWKS: fetched.JWKS,
	}
	if miss {
		ne.LastMissFetch = now
	} else if e != nil {
		ne.LastMissFetch = e.LastMissFetch
	}
	c.store(ne)
	return fresh, KeyInfo{Source: KeySourceNetwork, FetchedAt: now}, nil
}

// lockFetch takes the fetch lock of issuer in the cache directory, waiting up to FetchWait.
// waited says another process held it; ok is false when the wait ran out. Without a usable cache
// directory there is nobody to coordinate with: ok, no lock.
func (c *Cache) lockFetch(issuer string) (unlock func(), waited, ok bool) {
	if !c.dirOK {
		return nil, false, true
	}
	path := filepath.Join(c.Dir, "."+strings.TrimSuffix(CacheFileName(issuer), ".json")+".lock")
	deadline := time.Now().Add(orDefault(c.FetchWait, DefaultFetchWait))
	for {
		unlock, got, err := filelock.TryLock(path)
		if err != nil {
			return nil, waited, true // locks do not work here: fetch without one
		}
		if got {
			return unlock, waited, true
		}
		waited = true
		if time.Now().After(deadline) {
			return nil, true, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reload reads an issuer's entry from disk again, after another process may have written it.
func (c *Cache) reload(issuer string) (*CacheEntry, jwk.Set) {
	c.mu.Lock()
	delete(c.entries, issuer)
	c.mu.Unlock()
	return c.load(issuer)
}

// fallback serves a cached set that could not be refreshed, while it is within StaleFor.
func (c *Cache) fallback(e *CacheEntry, set jwk.Set, now time.Time, cause error) (jwk.Set, KeyInfo, error) {
	if e == nil || set == nil {
		return nil, KeyInfo{}, cause
	}
	if now.Before(e.FreshUntil) {
		// Fresh but the kid is unknown: hand back what we have; the lookup reports the miss.
		return set, KeyInfo{Source: KeySourceCache, FetchedAt: e.FetchedAt}, nil
	}
	if now.Before(e.FetchedAt.Add(c.staleFor())) {
		return set, KeyInfo{Source: KeySourceStale, FetchedAt: e.FetchedAt}, nil
	}
	return nil, KeyInfo{}, fmt.Errorf("cached keys fetched %s are past the %s stale window and the OP cannot be reached: %w",
		e.FetchedAt.UTC().Format(time.RFC3339), c.staleFor(), cause)
}

func (c *Cache) init() {
	c.once.Do(func() {
		c.entries = map[string]*CacheEntry{}
		if c.Dir == "" {
			return
		}
		if err := checkCacheDir(c.Dir); err != nil {
			c.note = "key cache in memory only: " + err.Error()
			return
		}
		c.dirOK = true
	})
}

// load returns the entry for issuer and its parsed key set (nil when absent or unparsable).
func (c *Cache) load(issuer string) (*CacheEntry, jwk.Set) {
	c.mu.Lock()
	e := c.entries[issuer]
	c.mu.Unlock()
	if e == nil && c.dirOK {
		e = c.readFile(issuer)
	}
	if e == nil || !hasDocument(e.JWKS) {
		return e, nil // no entry, or one that only records a failed fetch
	}
	set, err := parseJWKS(e.JWKS)
	if err != nil {
		c.logger().Warn("discarding a corrupt key cache entry", "issuer", issuer, "error", err.Error())
		c.remove(issuer)
		return nil, nil
	}
	return e, set
}

func (c *Cache) readFile(issuer string) *CacheEntry {
	path := c.path(issuer)
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if err := checkCacheFile(f); err != nil {
		c.logger().Warn("ignoring a key cache file", "path", path, "error", err.Error())
		return nil
	}
	var e CacheEntry
	dec := json.NewDecoder(f)
	if err := dec.Decode(&e); err != nil || e.Version != cacheVersion || e.Issuer != issuer {
		c.logger().Warn("discarding a corrupt key cache file", "path", path)
		os.Remove(path)
		return nil
	}
	return &e
}

func (c *Cache) store(e *CacheEntry) {
	c.mu.Lock()
	c.entries[e.Issuer] = e
	c.mu.Unlock()
	if !c.dirOK {
		return
	}
	data, err := json.Marshal(e)
	if err == nil {
		err = atomicfile.Write(c.path(e.Issuer), data, 0o600)
	}
	if err != nil {
		c.logger().Warn("cannot write the key cache", "dir", c.Dir, "error", err.Error())
	}
}

func (c *Cache) remove(issuer string) {
	c.mu.Lock()
	delete(c.entries, issuer)
	c.mu.Unlock()
	if c.dirOK {
		os.Remove(c.path(issuer))
	}
}

// path names an issuer's file by a hash: issuers are URLs, not file names.
func (c *Cache) path(issuer string) string {
	return filepath.Join(c.Dir, CacheFileName(issuer))
}

// CacheFileName is the file name of issuer's entry in a cache directory.
func CacheFileName(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return "jwks-" + hex.EncodeToString(sum[:12]) + ".json"
}

// hasDocument reports whether a stored document is there: absent and JSON null are not.
func hasDocument(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// ttl turns the OP's Cache-Control (maxAge: -1 absent, 0 "do not keep") into a freshness.
func (c *Cache) ttl(maxAge time.Duration) time.Duration {
	ttl := maxAge
	if ttl < 0 {
		ttl = orDefault(c.DefaultTTL, DefaultTTL)
	}
	return min(max(ttl, orDefault(c.MinTTL, DefaultMinTTL)), orDefault(c.MaxTTL, DefaultMaxTTL))
}

func (c *Cache) staleFor() time.Duration   { return orDefault(c.StaleFor, DefaultStaleFor) }
func (c *Cache) retryAfter() time.Duration { return orDefault(c.RetryAfter, DefaultRetryAfter) }

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func hasKID(set jwk.Set, kid string) bool {
	_, ok := set.LookupKeyID(kid)
	return ok
}

// checkCacheDir accepts a directory owned by us or root and not writable by group or others:
// whoever can write the cache can make verify trust keys of their choosing.
func checkCacheDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return checkOwnerMode(fi, dir)
}

func checkCacheFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	return checkOwnerMode(fi, f.Name())
}

func checkOwnerMode(fi fs.FileInfo, path string) error {
	uid, _, ok := fileowner.Of(fi)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", path)
	}
	if uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by root or the verify user (uid %d)", path, uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %v)", path, fi.Mode().Perm())
	}
	return nil
}

// ReadCacheDir lists the entries in a cache directory, for `opkssh cache`.
func ReadCacheDir(dir string) ([]CacheEntry, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []CacheEntry
	for _, n := range names {
		if !strings.HasPrefix(n.Name(), "jwks-") || !strings.HasSuffix(n.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			continue
		}
		var e CacheEntry
		if json.Unmarshal(data, &e) == nil && e.Version == cacheVersion {
			out = append(out, e)
		}
	}
	return out, nil
}

// ClearCacheDir removes every cache entry (and nothing else) from dir.
func ClearCacheDir(dir string) (int, error) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range names {
		if strings.HasPrefix(e.Name(), "jwks-") && strings.HasSuffix(e.Name(), ".json") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
