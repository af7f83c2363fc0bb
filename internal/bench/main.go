// Command bench measures opkssh as sshd experiences it and writes docs/benchmarks.md:
// whole-process verify latency (cold keys and warm cache), verify while the OP is down (its one
// fetch attempt and the back-off after it), policy size scaling (cold policy snapshot with cached
// keys, and warm), parallel ssh logins through a real sshd, login latency, and the peak RSS of
// one verify. Every figure in the report is measured by this run. Run it with `make bench` (as
// root with openssh-server installed for the sshd part).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sandbox"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/verifier"
)

// main runs the bench, as root in internal/sandbox's throw-away view of /etc, /var, /home and
// /run: the account and the sshd directory of the parallel-login step never reach the machine.
func main() {
	out := flag.String("out", "docs/benchmarks.md", "report file")
	runs := flag.Int("runs", 60, "runs per latency measurement")
	only := flag.String("only", "", "comma-separated steps to run (login always runs first); default all: "+strings.Join(stepNames, ","))
	baselineRev := flag.String("baseline", "", "git revision to compare --version and warm verify with, run alternately (step baseline)")
	flag.Parse()
	os.Exit(sandbox.Main(sandbox.Defaults(), func(error) int {
		if err := run(*out, *runs, *only, *baselineRev); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		return 0
	}))
}

type bench struct {
	dir, bin, browserDir string
	op                   *testop.Server
	certB64, certType    string
	key                  string
	runs                 int
	faults               []int64 // minor page faults of every opkssh process run so far, in order
	faultsMu             sync.Mutex
	report               strings.Builder
}

// shipLDFlags are make build's linker flags: stripped, with a version set (a development build
// without one reads its build information to print --version).
const shipLDFlags = "-s -w -X github.com/opkssh-team/opkssh/commands.Version=bench"

// stepNames are the report's sections, in order.
var stepNames = []string{"login", "verify", "baseline", "ci", "op-down", "scaling", "rss", "sshd"}

func run(out string, runs int, only, baselineRev string) error {
	dir, err := os.MkdirTemp("", "opkssh-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	b := &bench{dir: dir, bin: filepath.Join(dir, "opkssh"), browserDir: filepath.Join(dir, "browser"), runs: runs}
	for _, t := range [][2]string{{b.bin, "./cmd/opkssh"}, {filepath.Join(b.browserDir, "xdg-open"), "./internal/testop/fakebrowser"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", shipLDFlags, "-o", t[0], t[1])
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build ships it
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", t[1], err, o)
		}
	}
	b.op, err = testop.Start(testop.Options{Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		return err
	}
	defer b.op.Close()

	b.header()
	steps := []struct {
		name string
		fn   func() error
	}{
		{"login", b.login},
		{"verify", b.verifyLatency},
		{"baseline", func() error {
			if baselineRev == "" {
				return nil
			}
			return b.baseline(baselineRev)
		}},
		{"ci", b.ciVerify},
		{"op-down", b.opDown},
		{"scaling", b.scaling},
		{"rss", b.rss},
		{"sshd", b.parallelSSH},
	}
	want := strings.Split(only, ",")
	for _, s := range steps {
		if only != "" && s.name != "login" && !slices.Contains(want, s.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", out)
	return os.WriteFile(out, []byte(b.report.String()), 0o644)
}

func (b *bench) header() {
	host, _ := os.Hostname()
	fmt.Fprintf(&b.report, "# opkssh benchmarks\n\nProduced by `make bench` (internal/bench) on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b.report, "| machine | |\n|---|---|\n")
	fmt.Fprintf(&b.report, "| host | %s |\n| CPU | %s × %d |\n| kernel | %s |\n| Go | %s |\n| load average at start | %s |\n\n",
		host, cpuModel(), runtime.NumCPU(), kernel(), runtime.Version(), loadavg())
	fmt.Fprintf(&b.report, "Latencies are wall-clock times of whole `opkssh` processes started from Go (fork, exec, "+
		"run, exit), %d runs each unless stated, test OP on 127.0.0.1. Other work on the machine shows up in p95.\n\n", b.runs)
}

// login measures `opkssh login` end to end against the test OP, through the scripted browser.
func (b *bench) login() error {
	var times []time.Duration
	for i := 0; i < 20; i++ {
		key := filepath.Join(b.dir, fmt.Sprintf("login%d", i))
		redirect, err := logintest.FreeRedirectURI()
		if err != nil {
			return err
		}
		d, _, err := b.exec([]string{"HOME=" + b.dir, "FAKEBROWSER_USER=alice@example.com"}, "login", "--issuer", b.op.Issuer(), "--client-id", "opkssh", "--key-file", key, "--redirect-uri", redirect)
		if err != nil {
			return err
		}
		times = append(times, d)
		b.key = key
	}
	data, err := os.ReadFile(b.key + "-cert.pub")
	if err != nil {
		return err
	}
	f := strings.Fields(string(data))
	b.certType, b.certB64 = f[0], f[1]
	fmt.Fprintf(&b.report, "## Login\n\n`opkssh login` against the test OP with the scripted browser (key generation, discovery, "+
		"authorization, token exchange, ID-token check, certificate, files), 20 runs: %s.\n\n", stats(times))
	return nil
}

func (b *bench) policyFile(name string, rules int) (string, error) {
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(filepath.Join(dir, "policies.d"), 0o755); err != nil {
		return "", err
	}
	main := fmt.Sprintf("version: 1\nproviders:\n  test:\n    issuer: %s\n    client_ids: [opkssh]\n    expiration: 24h\nrules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n", b.op.Issuer())
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(main), 0o644); err != nil {
		return "", err
	}
	// The other rules go into drop-ins of 10,000 rules, as configuration management would write them.
	const perFile = 10000
	for f := 0; f*perFile < rules-1; f++ {
		var sb strings.Builder
		sb.WriteString("version: 1\nrules:\n")
		for i := f * perFile; i < min((f+1)*perFile, rules-1); i++ {
			fmt.Fprintf(&sb, "  - {principals: [user%d], provider: test, identities: [{email: user%d@example.com}]}\n", i, i)
		}
		if err := os.WriteFile(filepath.Join(dir, "policies.d", fmt.Sprintf("%03d.yaml", f)), []byte(sb.String()), 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "policies.yaml"), nil
}

func (b *bench) verifyArgs(policy, cacheDir, principal string) []string {
	return []string{"verify", principal, b.certB64, b.certType, "--policy", policy, "--cache-dir", cacheDir, "--log-file", filepath.Join(b.dir, "verify.log")}
}

func (b *bench) newCacheDir(name string) string {
	d := filepath.Join(b.dir, name)
	os.RemoveAll(d)
	os.MkdirAll(d, 0o700)
	return d
}

// verifyLatency measures cold-key verifies (no keys cached: discovery + JWKS from the OP; the
// policy snapshot already built) and warm verifies.
func (b *bench) verifyLatency() error {
	pol, err := b.policyFile("p10", 10)
	if err != nil {
		return err
	}
	var cold, warm []time.Duration
	warmDir := b.newCacheDir("warm")
	if _, _, err := b.exec(nil, b.verifyArgs(pol, warmDir, "alice")...); err != nil {
		return err
	}
	mark := len(b.faults)
	for i := 0; i < b.runs; i++ {
		dir := b.newCacheDir("cold")
		if err := seedCache(dir, warmDir, func(name string) bool { return strings.HasPrefix(name, "policy-") }); err != nil {
			return err
		}
		d, _, err := b.exec(nil, b.verifyArgs(pol, dir, "alice")...)
		if err != nil {
			return err
		}
		if line := lastLine(filepath.Join(b.dir, "verify.log")); !strings.Contains(line, `"keys":"network"`) {
			return fmt.Errorf("cold-key verify did not fetch the keys: %s", line)
		}
		cold = append(cold, d)
	}
	coldFaults := slices.Clone(b.faults[mark:])
	mark = len(b.faults)
	before := b.op.Requests("/jwks") + b.op.Requests("/.well-known/openid-configuration")
	for i := 0; i < b.runs; i++ {
		d, _, err := b.exec(nil, b.verifyArgs(pol, warmDir, "alice")...)
		if err != nil {
			return err
		}
		warm = append(warm, d)
	}
	requests := b.op.Requests("/jwks") + b.op.Requests("/.well-known/openid-configuration") - before
	warmFaults := slices.Clone(b.faults[mark:])
	floors, err := b.floors()
	if err != nil {
		return err
	}
	var startup []time.Duration
	var startupFaults []int64
	for i := 0; i < b.runs; i++ {
		d, _, err := b.exec(nil, "--version")
		if err != nil {
			return err
		}
		startup = append(startup, d)
		startupFaults = append(startupFaults, b.lastFaults())
	}
	perPage := pageTouchCost()
	fmt.Fprintf(&b.report, "## Verify latency (whole process)\n\n| process | latency | page faults (median) |\n|---|---|---|\n")
	for _, f := range floors {
		fmt.Fprintf(&b.report, "| %s | %s | %d |\n", f.name, stats(f.times), medianInt(f.faults))
	}
	fmt.Fprintf(&b.report, "| `opkssh --version`: start-up alone | %s | %d |\n", stats(startup), medianInt(startupFaults))
	fmt.Fprintf(&b.report, "| cold keys: no keys cached, discovery + JWKS from the test OP (policy snapshot cached) | %s | %d |\n", stats(cold), medianInt(coldFaults))
	fmt.Fprintf(&b.report, "| warm verify: keys from the cache (%d OP requests in %d runs) | %s | %d |\n\n", requests, b.runs, stats(warm), medianInt(warmFaults))
	initMS, initPkgs, err := b.initTrace()
	if err != nil {
		return err
	}
	empty, libs := median(floors[1].times), median(floors[2].times)
	fmt.Fprintf(&b.report, "Target: warm median ≤ 5 ms. Measured warm median: %.2f ms (%s).\n\n", ms(median(warm)), verdict(median(warm) <= 5*time.Millisecond))
	fmt.Fprintf(&b.report, "Where the warm median goes, by the rows above: %.2f ms is what any Go program costs here (empty main), "+
		"%.2f ms what linking the libraries verify needs costs before any work, their package initialisation and the page "+
		"faults of a larger binary (their row minus the empty main), %.2f ms the rest of "+
		"opkssh's start-up (`--version` minus that row), and %.2f ms the decision itself (certificate, PK token, cached keys, "+
		"policy snapshot, log). Package initialisation of opkssh alone (GODEBUG=inittrace=1, median of 15 runs) is %.2f ms "+
		"over %d packages.\n\n",
		ms(empty), ms(libs-empty), ms(median(startup)-libs), ms(median(warm)-median(startup)), initMS, initPkgs)
	emptyFaults := medianInt(floors[1].faults)
	slope := 0.0
	if extra := medianInt(warmFaults) - emptyFaults; extra > 0 {
		slope = float64((median(warm) - empty).Microseconds()) / float64(extra)
	}
	fmt.Fprintf(&b.report, "Page faults are costly here: touching a fresh anonymous page for the first time costs %.1f µs on "+
		"this machine (1,024 pages, median of 5 rounds). From the empty main to a warm verify each extra page fault goes with "+
		"%.0f µs of wall time (%d faults against %d): the faults themselves explain part of that, the code that touches "+
		"those pages the rest.",
		float64(perPage.Nanoseconds())/1000, slope, medianInt(warmFaults), emptyFaults)
	if empty > 5*time.Millisecond {
		fmt.Fprintf(&b.report, " A Go program that does nothing already takes %.2f ms here, so no Go verify can meet the 5 ms "+
			"target on this machine.", ms(empty))
	}
	fmt.Fprintf(&b.report, "\n\n")
	return nil
}

// scaling measures verify against policies of growing size: the first verify after the policy
// changed (it builds the compiled snapshot; the OP's keys are already cached, so no fetch is in
// the figure) and warm verifies.
func (b *bench) scaling() error {
	coldRuns := min(b.runs, 3)
	fmt.Fprintf(&b.report, "## Policy size\n\nRules spread over drop-ins of 10,000. Cold policy: the first verify of a policy, which "+
		"builds the compiled snapshot, with the OP's keys already cached (median of %d, each in a fresh cache directory "+
		"holding only the keys). Warm: snapshot and keys cached.\n\n| rules | cold policy, cached keys | warm |\n|---|---|---|\n", coldRuns)
	keysDir := b.newCacheDir("scale-keys")
	keysPol, err := b.policyFile("p10", 10)
	if err != nil {
		return err
	}
	if _, _, err := b.exec(nil, b.verifyArgs(keysPol, keysDir, "alice")...); err != nil {
		return err
	}
	keyFile := verifier.CacheFileName(b.op.Issuer())
	var base time.Duration
	for _, n := range []int{10, 1000, 100000} {
		pol, err := b.policyFile(fmt.Sprintf("scale%d", n), n)
		if err != nil {
			return err
		}
		var first []time.Duration
		var dir string
		for i := 0; i < coldRuns; i++ {
			dir = b.newCacheDir(fmt.Sprintf("scale%d-cache", n))
			if err := seedCache(dir, keysDir, func(name string) bool { return name == keyFile }); err != nil {
				return err
			}
			d, _, err := b.exec(nil, b.verifyArgs(pol, dir, "alice")...)
			if err != nil {
				return err
			}
			if line := lastLine(filepath.Join(b.dir, "verify.log")); !strings.Contains(line, `"keys":"cache"`) {
				return fmt.Errorf("cold-policy verify did not use the cached keys: %s", line)
			}
			first = append(first, d)
		}
		var times []time.Duration
		for i := 0; i < b.runs; i++ {
			d, _, err := b.exec(nil, b.verifyArgs(pol, dir, "alice")...)
			if err != nil {
				return err
			}
			times = append(times, d)
		}
		if n == 10 {
			base = median(times)
		}
		fmt.Fprintf(&b.report, "| %d | %s | %s |\n", n, stats(first), stats(times))
		if n == 100000 {
			ratio := float64(median(times)) / float64(base)
			fmt.Fprintf(&b.report, "\nTarget: 100,000 rules warm median ≤ 2× the 10-rule median. Measured: %.2f× (%s).\n\n", ratio, verdict(ratio <= 2))
			if err := b.herd(pol, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// herd edits the policy and starts verifies all at once, as logins arrive after a configuration
// change: every one of them finds the compiled snapshot out of date.
func (b *bench) herd(pol, cacheDir string) error {
	const n = 20
	dropIn := filepath.Join(filepath.Dir(pol), "policies.d", "000.yaml")
	f, err := os.OpenFile(dropIn, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "# edited %s\n", time.Now().Format(time.RFC3339Nano))
	f.Close()
	times, failed, wall := atOnce(n, func() (time.Duration, bool) {
		d, _, err := b.exec(nil, b.verifyArgs(pol, cacheDir, "alice")...)
		return d, err == nil
	})
	fmt.Fprintf(&b.report, "Right after an edit (a comment appended to a drop-in), %d verifies started at once: all done in %.2f s, "+
		"%d failed; per process %s.\n\n", n, wall.Seconds(), failed, stats(times))
	if failed > 0 {
		return fmt.Errorf("%d verifies failed after the edit", failed)
	}
	return nil
}

// rss measures the peak RSS of verify with /usr/bin/time. getrusage on our own child would
// report this benchmark's RSS: Go starts children with CLONE_VM, and the kernel records the
// parent's high-water mark in the child's at exec.
func (b *bench) rss() error {
	fmt.Fprintf(&b.report, "## Memory\n\n")
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		fmt.Fprintf(&b.report, "Not measured: /usr/bin/time is missing (apt-get install time).\n\n")
		return nil
	}
	pol, err := b.policyFile("p10", 10)
	if err != nil {
		return err
	}
	warm := b.newCacheDir("rss-warm")
	if _, _, err := b.exec(nil, b.verifyArgs(pol, warm, "alice")...); err != nil {
		return err
	}
	coldKeys := b.newCacheDir("rss-cold")
	if err := seedCache(coldKeys, warm, func(name string) bool { return strings.HasPrefix(name, "policy-") }); err != nil {
		return err
	}
	var peak int
	fmt.Fprintf(&b.report, "Peak RSS (/usr/bin/time %%M):\n\n| process | peak RSS |\n|---|---|\n")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"verify, warm cache", b.verifyArgs(pol, warm, "alice")},
		{"verify, no keys cached (fetches the JWKS; policy snapshot cached)", b.verifyArgs(pol, coldKeys, "alice")},
		{"opkssh --version", []string{"--version"}},
	} {
		out, err := exec.Command("/usr/bin/time", append([]string{"-f", "%M", b.bin}, c.args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", c.name, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var kb int
		fmt.Sscanf(lines[len(lines)-1], "%d", &kb)
		peak = max(peak, kb)
		fmt.Fprintf(&b.report, "| %s | %.1f MB |\n", c.name, float64(kb)/1024)
	}
	fmt.Fprintf(&b.report, "\nTarget: peak RSS of a verify ≤ 20 MB: %s.\n\n", verdict(peak <= 20*1024))
	return nil
}

// parallelSSH runs 50 ssh logins at once through a real sshd whose AuthorizedKeysCommand is opkssh.
func (b *bench) parallelSSH() error {
	fmt.Fprintf(&b.report, "## 50 parallel ssh logins through sshd\n\n")
	if err := sshdtest.Available(); err != nil {
		fmt.Fprintf(&b.report, "Not measured: %v.\n", err)
		return nil
	}
	const account = "opkssh-bench"
	remove, err := sshdtest.EnsureUser(account)
	if err != nil {
		return err
	}
	defer remove()
	in, err := sshdtest.NewInstall(b.bin, "nobody")
	if err != nil {
		return err
	}
	defer in.Remove()
	in.WritePolicy(fmt.Sprintf("version: 1\nproviders:\n  test:\n    issuer: %s\n    client_ids: [opkssh]\n    expiration: 24h\nrules:\n  - principals: [%s]\n    provider: test\n    identities:\n      - email: alice@example.com\n", b.op.Issuer(), account))
	work := filepath.Join(b.dir, "sshd")
	os.MkdirAll(work, 0o755)
	srv, err := sshdtest.Start(sshdtest.Options{WorkDir: work, Install: in})
	if err != nil {
		return err
	}
	defer srv.Stop()
	// The harness sets MaxStartups 100:30:200 (the default 10:30:100 drops connections at random
	// beyond 10 unauthenticated ones); a failed login is retried once and counted.
	const n = 50
	var retried atomic.Int32
	times, failures, total := atOnce(n, func() (time.Duration, bool) {
		for attempt := 0; attempt < 2; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			t0 := time.Now()
			out, _, err := srv.Run(ctx, account, b.key, "true && echo ok")
			cancel()
			if err == nil && strings.TrimSpace(out) == "ok" {
				return time.Since(t0), true
			}
			if attempt == 0 {
				retried.Add(1)
			}
		}
		return 0, false
	})
	fmt.Fprintf(&b.report, "Real sshd on 127.0.0.1 (AuthorizedKeysCommand as nobody, MaxStartups 100:30:200), real ssh client, key ECDSA P-256, all started at once: "+
		"%d of %d logins succeeded (%d needed a second attempt, %d failed twice) in %.1f s; per login %s.\n",
		len(times), n, retried.Load(), failures, total.Seconds(), stats(times))
	return nil
}

// atOnce runs fn n times, all at once, and returns the durations of the runs that succeeded, the
// number that failed and the wall time of the whole.
func atOnce(n int, fn func() (time.Duration, bool)) (times []time.Duration, failed int, wall time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, ok := fn()
			mu.Lock()
			defer mu.Unlock()
			if ok {
				times = append(times, d)
			} else {
				failed++
			}
		}()
	}
	wg.Wait()
	return times, failed, time.Since(start)
}

// initTrace sums the clock time of every package init of `opkssh --version` (median of 15 runs).
func (b *bench) initTrace() (float64, int, error) {
	var sums []time.Duration
	pkgs := 0
	for i := 0; i < 15; i++ {
		cmd := exec.Command(b.bin, "--version")
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, 0, err
		}
		var sum float64
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			// init PKG @T ms, X ms clock, B bytes, A allocs
			if len(f) >= 7 && f[0] == "init" && f[6] == "clock," {
				var x float64
				fmt.Sscanf(f[4], "%f", &x)
				sum += x
				n++
			}
		}
		sums = append(sums, time.Duration(sum*float64(time.Millisecond)))
		pkgs = n
	}
	return ms(median(sums)), pkgs, nil
}

// floor is a reference process timed like opkssh.
type floor struct {
	name   string
	times  []time.Duration
	faults []int64
}

// floors times three reference processes: /bin/true (exec and the dynamic loader, no Go), a Go
// program with an empty main, and internal/bench/floor, which links the libraries verify needs and
// does nothing. Both Go programs are built like opkssh (static, stripped).
func (b *bench) floors() ([]floor, error) {
	empty := filepath.Join(b.dir, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(empty, "go.mod"), []byte("module empty\n\ngo 1.25\n"), 0o644)
	builds := []struct{ dir, pkg, out string }{
		{empty, ".", filepath.Join(b.dir, "empty-bin")},
		{"", "./internal/bench/floor", filepath.Join(b.dir, "floor-bin")},
	}
	for _, t := range builds {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", t.out, t.pkg)
		cmd.Dir = t.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", t.pkg, err, o)
		}
	}
	fs := []floor{
		{name: "`/bin/true`, for reference: exec and the dynamic loader, no Go"},
		{name: "Go program with an empty main, for reference"},
		{name: "Go program linking the libraries verify needs (PK token codec and jwx, x/crypto/ssh, yaml.v3, net/http, slog, syslog, cobra), empty main"},
	}
	bins := []string{"/bin/true", builds[0].out, builds[1].out}
	for i := range fs {
		for r := 0; r < b.runs; r++ {
			cmd := exec.Command(bins[i])
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("%s: %v", bins[i], err)
			}
			fs[i].times = append(fs[i].times, time.Since(t0))
			fs[i].faults = append(fs[i].faults, minflt(cmd.ProcessState))
		}
	}
	return fs, nil
}

// pageTouchCost is the median time to touch a fresh anonymous page for the first time (a minor
// page fault and whatever the hypervisor adds to it).
func pageTouchCost() time.Duration {
	const pages = 1024
	size := os.Getpagesize()
	var rounds []time.Duration
	for r := 0; r < 5; r++ {
		m, err := syscall.Mmap(-1, 0, pages*size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			return 0
		}
		t0 := time.Now()
		for i := 0; i < len(m); i += size {
			m[i] = 1
		}
		rounds = append(rounds, time.Since(t0)/pages)
		syscall.Munmap(m)
	}
	return median(rounds)
}

// minflt is the number of minor page faults of a finished child (exec included).
func minflt(st *os.ProcessState) int64 {
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru != nil {
		return ru.Minflt
	}
	return 0
}

func (b *bench) lastFaults() int64 {
	if len(b.faults) == 0 {
		return 0
	}
	return b.faults[len(b.faults)-1]
}

func (b *bench) exec(env []string, args ...string) (time.Duration, string, error) {
	d, code, out := b.execAllowFail(env, args...)
	if code != 0 {
		return d, out, fmt.Errorf("opkssh %s: exit %d: %s", args[0], code, out)
	}
	return d, out, nil
}

func (b *bench) execAllowFail(env []string, args ...string) (time.Duration, int, string) {
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append([]string{"PATH=" + b.browserDir + ":/usr/bin:/bin"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if cmd.ProcessState != nil {
		b.faultsMu.Lock()
		b.faults = append(b.faults, minflt(cmd.ProcessState))
		b.faultsMu.Unlock()
	}
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return d, code, out.String()
}

func median(t []time.Duration) time.Duration { return percentile(t, 50) }

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func percentile(t []time.Duration, p int) time.Duration {
	if len(t) == 0 {
		return 0
	}
	s := slices.Clone(t)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func stats(t []time.Duration) string {
	return fmt.Sprintf("median %.2f ms, p95 %.2f ms (n=%d)", ms(median(t)), ms(percentile(t, 95)), len(t))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func lastLine(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[len(lines)-1]
}

// clipJSON keeps the decision, reason and the named key of a decision log line.
func clipJSON(line, key string) string {
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) != nil {
		return line
	}
	out := fmt.Sprintf(`"decision":%q,"reason":%q`, m["decision"], m["reason"])
	if key != "reason" && key != "decision" {
		out += fmt.Sprintf(`,%q:%q`, key, fmt.Sprint(m[key]))
	}
	return out
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(data))
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
