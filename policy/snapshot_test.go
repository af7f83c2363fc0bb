package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/filelock"
)

func snapshotFixture(t *testing.T) (LoadOptions, string) {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	etc := filepath.Join(root, "etc")
	os.MkdirAll(filepath.Join(etc, "policies.d"), 0o755)
	main := `version: 1
providers:
  corp:
    issuer: https://sso.example.com
    client_ids: [opkssh]
  broken:
    issuer: https://broken.example.com
    client_ids: []
rules:
  - principals: [root, deploy]
    provider: corp
    identities:
      - email: alice@example.com
deny:
  - email: mallory@example.com
`
	os.WriteFile(filepath.Join(etc, "policies.yaml"), []byte(main), 0o644)
	var sb strings.Builder
	sb.WriteString("version: 1\nrules:\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&sb, "  - {principals: [user%d], provider: corp, identities: [{email: user%d@example.com}]}\n", i, i)
	}
	sb.WriteString("  - {principals: [root], provider: broken, identities: [{sub: x}]}\n")
	os.WriteFile(filepath.Join(etc, "policies.d", "10-users.yaml"), []byte(sb.String()), 0o644)
	cache := filepath.Join(root, "cache")
	os.Mkdir(cache, 0o700)
	return LoadOptions{Path: filepath.Join(etc, "policies.yaml"), DropInDir: filepath.Join(etc, "policies.d"), TrustedUIDs: []int{os.Getuid()}}, cache
}

func TestLoadForPrincipalSameDecisions(t *testing.T) {
	opts, cache := snapshotFixture(t)
	full, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]Claims{
		"alice":   {"email": "alice@example.com", "email_verified": true, "sub": "a"},
		"user7":   {"email": "user7@example.com", "email_verified": true, "sub": "u7"},
		"mallory": {"email": "mallory@example.com", "email_verified": true, "sub": "m"},
		"x":       {"sub": "x"},
	}
	for round := 0; round < 2; round++ { // the first round writes the snapshot, the second reads it
		for _, principal := range []string{"root", "deploy", "user7", "user1999", "nobody"} {
			snap, err := LoadForPrincipal(opts, cache, principal)
			if err != nil {
				t.Fatal(err)
			}
			if round == 1 && len(snap.Rules) > 2 {
				t.Fatalf("snapshot for %s holds %d rules; want only that principal's", principal, len(snap.Rules))
			}
			for name, c := range tokens {
				for _, prov := range []string{"corp", "broken"} {
					a, b := full.Evaluate(principal, prov, c), snap.Evaluate(principal, prov, c)
					if a.Allowed != b.Allowed || a.Reason != b.Reason {
						t.Fatalf("round %d %s as %s via %s: full %v/%s, snapshot %v/%s", round, name, principal, prov, a.Allowed, a.Reason, b.Allowed, b.Reason)
					}
				}
			}
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join(cache, "policy-*")); len(dirs) != 1 {
		t.Fatalf("snapshot dirs: %v", dirs)
	}
}

func TestLoadForPrincipalSeesEdits(t *testing.T) {
	opts, cache := snapshotFixture(t)
	c := Claims{"email": "bob@example.com", "email_verified": true}
	if p, _ := LoadForPrincipal(opts, cache, "bob"); p.Evaluate("bob", "corp", c).Allowed {
		t.Fatal("bob allowed before the edit")
	}
	f, _ := os.OpenFile(filepath.Join(opts.DropInDir, "10-users.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("  - {principals: [bob], provider: corp, identities: [{email: bob@example.com}]}\n")
	f.Close()
	if p, _ := LoadForPrincipal(opts, cache, "bob"); !p.Evaluate("bob", "corp", c).Allowed {
		t.Fatal("edit not seen")
	}
	// A new drop-in file is seen too.
	os.WriteFile(filepath.Join(opts.DropInDir, "20-deny.yaml"), []byte("version: 1\ndeny:\n  - email: bob@example.com\n"), 0o644)
	if p, _ := LoadForPrincipal(opts, cache, "bob"); p.Evaluate("bob", "corp", c).Allowed {
		t.Fatal("new drop-in not seen")
	}
	if dirs, _ := filepath.Glob(filepath.Join(cache, "policy-*")); len(dirs) != 1 {
		t.Fatalf("old snapshots not removed: %v", dirs)
	}
}

func TestLoadForPrincipalStillChecksFiles(t *testing.T) {
	opts, cache := snapshotFixture(t)
	if _, err := LoadForPrincipal(opts, cache, "root"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(opts.Path, 0o666)
	if _, err := LoadForPrincipal(opts, cache, "root"); !errors.Is(err, ErrUnsafeFile) {
		t.Fatalf("world-writable policy with a snapshot present: %v", err)
	}
}

func TestLoadForPrincipalUnsafeCacheDir(t *testing.T) {
	opts, cache := snapshotFixture(t)
	os.Chmod(cache, 0o777)
	p, err := LoadForPrincipal(opts, cache, "root")
	if err != nil || len(p.Rules) < 2000 {
		t.Fatalf("fallback to Load: %v, %d rules", err, len(p.Rules))
	}
	if dirs, _ := filepath.Glob(filepath.Join(cache, "policy-*")); len(dirs) != 0 {
		t.Fatal("snapshot written into a world-writable directory")
	}
}

// After an edit, concurrent loads parse the policy once: one builds the snapshot, the others wait
// for it and read it.
func TestLoadForPrincipalBuildsOnce(t *testing.T) {
	opts, cache := snapshotFixture(t)
	var parses atomic.Int32
	opts.parsed = func() { parses.Add(1) }
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			p, err := LoadForPrincipal(opts, cache, "user7")
			if err == nil && !p.Evaluate("user7", "corp", Claims{"email": "user7@example.com", "email_verified": true}).Allowed {
				err = errors.New("user7 not allowed")
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := parses.Load(); got != 1 {
		t.Fatalf("%d concurrent loads parsed the policy %d times, want once", n, got)
	}
}

// A builder that holds the lock too long does not lock the others out: after the wait they load
// the policy themselves.
func TestLoadForPrincipalBuildWaitIsBounded(t *testing.T) {
	opts, cache := snapshotFixture(t)
	unlock, err := filelock.Lock(filepath.Join(cache, ".policy-build.lock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	opts.SnapshotBuildWait = 100 * time.Millisecond
	start := time.Now()
	p, err := LoadForPrincipal(opts, cache, "root")
	if err != nil || len(p.Rules) == 0 {
		t.Fatalf("load while another holds the build lock: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("waited %v for the build lock, want about 100ms", d)
	}
}
