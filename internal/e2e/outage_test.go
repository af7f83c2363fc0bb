package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
)

// hangingOP accepts connections on loopback and never answers: an OP that is down in the worst
// way, costing every request its whole timeout. It counts the connections it was sent.
func hangingOP(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String(), &n
}

// TestOutageBackoff: an OP that hangs, with nothing cached. The first verify waits for the
// timeout and records the failure in the cache directory; the verifies after it, separate
// processes, fail at once while the record is fresh; verifies started together make one request
// to the OP between them.
func TestOutageBackoff(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run this as root")
		}
		t.Skip("needs root to run verify as nobody")
	}
	op := startOP(t)
	keyPath := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id"))
	m := newMinter(t, op, keyPath)
	hang, requests := hangingOP(t)
	c := logintest.Claims(op, "alice", "alice@example.com", time.Now())
	c["iss"] = hang
	token := m.forge(c)

	in := nobodyInstall(t)
	if err := in.WritePolicy(policy(hang, advRules)); err != nil {
		t.Fatal(err)
	}
	run := func(cache string) (time.Duration, string) {
		log := nobodyLog(t, in)
		start := time.Now()
		stdout, code := verifyAsSSHD(t, "--policy", in.Policy, "--cache-dir", cache, "--log-file", log, "--timeout", "1500ms", "--", "alice", token.b64, token.typ)
		d := time.Since(start)
		_, decision := decisionLog(t, log)
		if code != 1 || stdout != "" || decision["reason"] != "keys_unavailable" {
			t.Fatalf("want keys_unavailable: exit %d, stdout %q, %v", code, stdout, decision)
		}
		detail, _ := decision["detail"].(string)
		return d, detail
	}

	first, detail := run(in.Cache)
	if first < time.Second {
		t.Fatalf("first verify took %s: it did not wait for the OP (%s)", first, detail)
	}
	for i := range 3 {
		d, detail := run(in.Cache)
		if d > 500*time.Millisecond || !strings.Contains(detail, "the last fetch") {
			t.Fatalf("verify %d after the failure took %s (%s)", i+2, d, detail)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("the OP was sent %d connections, want 1", n)
	}
	t.Logf("first verify %s, the next ones fail at once", first.Round(time.Millisecond))

	// Six verifies at once with an empty cache: one of them asks the OP.
	cache2 := filepath.Join(in.Dir, "cache2")
	os.Mkdir(cache2, 0o700)
	os.Chown(cache2, int(adv.ids[0]), int(adv.ids[1]))
	before := requests.Load()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for range 6 {
		wg.Go(func() {
			d, _ := run(cache2)
			mu.Lock()
			worst = max(worst, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := requests.Load() - before; n != 1 {
		t.Fatalf("6 concurrent verifies sent the OP %d connections, want 1", n)
	}
	if worst > 3*time.Second {
		t.Fatalf("a concurrent verify took %s", worst)
	}
	t.Logf("6 concurrent verifies: one request to the OP, slowest %s", worst.Round(time.Millisecond))
}
