package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/verifier"
)

// hangRuns bounds the runs against an OP that never answers: each costs the whole fetch timeout.
const hangRuns = 3

// opDown measures verify during an OP outage with a warm but stale key cache. A second test OP,
// used only here, fills the cache and is then stopped for real: first its port refuses
// connections, then a listener on that port accepts them and never answers. The cache entry is
// made 2 h old (past its freshness, inside the 72 h stale window) before each first verify of an
// outage, which makes the one fetch attempt an outage costs and records the failure; the verifies
// after it, within RetryAfter of that failure, fetch nothing (the back-off).
func (b *bench) opDown() error {
	op, err := testop.Start(testop.Options{Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		return err
	}
	defer op.Close()
	o, err := b.outageSetup(op)
	if err != nil {
		return err
	}
	if err := o.verify(b, "keys from the OP before the outage", "network"); err != nil {
		return err
	}
	host := strings.TrimPrefix(op.Issuer(), "http://")
	op.Close()
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("the stopped OP at %s still accepts connections", host)
	}

	refusedFirst, refusedBackoff, err := o.outage(b, b.runs, nil)
	if err != nil {
		return fmt.Errorf("OP port refusing: %w", err)
	}
	hang, err := hangingListener(host)
	if err != nil {
		return err
	}
	defer hang.close()
	hangFirst, hangBackoff, err := o.outage(b, min(b.runs, hangRuns), hang)
	if err != nil {
		return fmt.Errorf("OP hanging: %w", err)
	}
	hangConns := hang.conns.Load()
	// Past the stale window, with a failure recorded just now: refused without a fetch.
	if err := o.setAge(73*time.Hour, true); err != nil {
		return err
	}
	_, code, _ := b.execAllowFail(nil, o.args...)
	pastLine := lastLine(o.log)

	fmt.Fprintf(&b.report, "## Verify with the OP unreachable (warm cache)\n\n")
	fmt.Fprintf(&b.report, "A second test OP, used only here, filled the key cache and was then stopped: first its port "+
		"refused connections, then a listener on that port accepted them and never answered. Before each first verify of an "+
		"outage the cache entry was made 2 h old (past its freshness, inside the %.0f h stale window) with no failure recorded; "+
		"that verify tries the OP once, records the failure and allows with the stale keys. The verifies after it, within "+
		"%.0f s of the recorded failure, do not try the OP (the back-off) and allow with the stale keys.\n\n",
		verifier.DefaultStaleFor.Hours(), verifier.DefaultRetryAfter.Seconds())
	fmt.Fprintf(&b.report, "| OP | first verify of the outage (one fetch attempt) | verifies in the back-off |\n|---|---|---|\n")
	fmt.Fprintf(&b.report, "| port refuses connections | %s | %s |\n", stats(refusedFirst), stats(refusedBackoff))
	fmt.Fprintf(&b.report, "| accepts connections, never answers (fetch timeout %.0f s) | %s | %s |\n\n",
		verifier.DefaultFetchTimeout.Seconds(), stats(hangFirst), stats(hangBackoff))
	fmt.Fprintf(&b.report, "The hanging OP received %d connections in all: %d first verifies, %d back-off verifies. "+
		"Decision log of a back-off verify: `%s`.\n\n", hangConns, len(hangFirst), len(hangBackoff), clipJSON(o.backoffLine, "keys"))
	fmt.Fprintf(&b.report, "Entry made 73 h old (past the stale window): exit %d, %s. Decision log: `%s`.\n\n",
		code, verdict(code == 1), clipJSON(pastLine, "reason"))
	if code != 1 {
		return fmt.Errorf("verify past the stale window exited %d", code)
	}
	return nil
}

// outageOP is the outage step's OP, certificate, policy and cache.
type outageOP struct {
	args        []string // verify's command line
	log         string   // its decision log
	entry       string   // the cache entry of the OP's keys
	backoffLine string   // a decision log line of a back-off verify
}

// outageSetup logs in against op and writes a policy for it and an empty cache directory.
func (b *bench) outageSetup(op *testop.Server) (*outageOP, error) {
	key := filepath.Join(b.dir, "outage-key")
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		return nil, err
	}
	if _, _, err := b.exec([]string{"HOME=" + b.dir, "FAKEBROWSER_USER=alice@example.com"}, "login", "--issuer", op.Issuer(), "--client-id", "opkssh", "--key-file", key, "--redirect-uri", redirect); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(key + "-cert.pub")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return nil, fmt.Errorf("certificate file %q", data)
	}
	dir := filepath.Join(b.dir, "outage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pol := filepath.Join(dir, "policies.yaml")
	content := fmt.Sprintf("version: 1\nproviders:\n  test:\n    issuer: %s\n    client_ids: [opkssh]\n    expiration: 24h\nrules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n", op.Issuer())
	if err := os.WriteFile(pol, []byte(content), 0o644); err != nil {
		return nil, err
	}
	cache := b.newCacheDir("outage-cache")
	log := filepath.Join(dir, "verify.log")
	return &outageOP{
		args:  []string{"verify", "alice", f[1], f[0], "--policy", pol, "--cache-dir", cache, "--log-file", log},
		log:   log,
		entry: filepath.Join(cache, verifier.CacheFileName(op.Issuer())),
	}, nil
}

// verify runs one verify that must allow with keys from source.
func (o *outageOP) verify(b *bench, what, source string) error {
	if _, _, err := b.exec(nil, o.args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if line := lastLine(o.log); !strings.Contains(line, `"decision":"allow"`) || !strings.Contains(line, `"keys":"`+source+`"`) {
		return fmt.Errorf("%s: want an allow with keys from %s, logged %s", what, source, line)
	}
	return nil
}

// outage times runs first verifies of an outage, each after the entry was made stale with no
// failure recorded, then runs verifies in the back-off that the last of them started. With hang,
// every first verify must have reached the OP and no back-off verify may have.
func (o *outageOP) outage(b *bench, runs int, hang *hangingOP) (first, backoff []time.Duration, err error) {
	for i := 0; i < runs; i++ {
		if err := o.setAge(2*time.Hour, false); err != nil {
			return nil, nil, err
		}
		t0 := time.Now()
		if err := o.verify(b, "first verify of the outage", "stale"); err != nil {
			return nil, nil, err
		}
		first = append(first, time.Since(t0))
	}
	e, err := readEntry(o.entry)
	if err != nil {
		return nil, nil, err
	}
	if e.LastFailure.IsZero() || e.LastError == "" {
		return nil, nil, errors.New("the failed fetch was not recorded in the cache")
	}
	if hang != nil && hang.conns.Load() < int32(runs) {
		return nil, nil, fmt.Errorf("%d first verifies made %d connections to the OP", runs, hang.conns.Load())
	}
	var before int32
	if hang != nil {
		before = hang.conns.Load()
	}
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		if err := o.verify(b, "verify in the back-off", "stale"); err != nil {
			return nil, nil, err
		}
		backoff = append(backoff, time.Since(t0))
	}
	o.backoffLine = lastLine(o.log)
	// An attempt would have moved the recorded failure: none was made.
	after, err := readEntry(o.entry)
	if err != nil {
		return nil, nil, err
	}
	if !after.LastFailure.Equal(e.LastFailure) {
		return nil, nil, fmt.Errorf("a verify in the back-off tried the OP (the back-off of %s ran out: use fewer -runs)", verifier.DefaultRetryAfter)
	}
	if hang != nil && hang.conns.Load() != before {
		return nil, nil, fmt.Errorf("verifies in the back-off made %d connections to the OP", hang.conns.Load()-before)
	}
	return first, backoff, nil
}

// setAge rewrites the cache entry as fetched age ago and fresh for an hour after that; with
// failed, a failed fetch is recorded now, else none.
func (o *outageOP) setAge(age time.Duration, failed bool) error {
	e, err := readEntry(o.entry)
	if err != nil {
		return err
	}
	e.FetchedAt = time.Now().Add(-age)
	e.FreshUntil = e.FetchedAt.Add(time.Hour)
	e.LastAttempt = e.FetchedAt
	e.LastFailure, e.LastError = time.Time{}, ""
	if failed {
		e.LastAttempt, e.LastFailure, e.LastError = time.Now(), time.Now(), "bench: outage"
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return os.WriteFile(o.entry, data, 0o600)
}

func readEntry(path string) (*verifier.CacheEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e verifier.CacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}

// hangingOP accepts connections and never answers, counting them.
type hangingOP struct {
	ln    net.Listener
	conns atomic.Int32
	mu    sync.Mutex
	open  []net.Conn
}

func hangingListener(hostport string) (*hangingOP, error) {
	ln, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("listening on the stopped OP's address: %w", err)
	}
	h := &hangingOP{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns.Add(1)
			h.mu.Lock()
			h.open = append(h.open, c)
			h.mu.Unlock()
		}
	}()
	return h, nil
}

func (h *hangingOP) close() {
	h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.open {
		c.Close()
	}
}

// seedCache copies the entries of the cache directory src whose names keep accepts into dst, so
// that a measurement starts with only the part it is not about already cached.
func seedCache(dst, src string, keep func(name string) bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if !keep(e.Name()) {
			continue
		}
		n++
		err := filepath.WalkDir(filepath.Join(src, e.Name()), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, path)
			target := filepath.Join(dst, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				return os.Mkdir(target, info.Mode().Perm())
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		})
		if err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("nothing to seed from %s", src)
	}
	return nil
}
