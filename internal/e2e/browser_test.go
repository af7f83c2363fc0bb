package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestLoginWithChromium is the login a person does: `opkssh login --no-browser` prints a URL, a
// real (headless) Chromium opens it, lands on the test OP's HTML form, types a username and a
// password and presses the button, and the loopback callback says "You are logged in". The
// certificate that login wrote must then pass `opkssh verify`.
func TestLoginWithChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the Chromium login test (.ci/run installs chromium), but: %v", err)
		}
		t.Skipf("skipping the Chromium login test (CI=true would fail here): %v", err)
	}
	start := time.Now()
	op := startOP(t)
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // the policy file's directory must not be group/other writable
	key := filepath.Join(dir, "id_ecdsa")

	// The real binary, waiting for the browser.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := exec.CommandContext(ctx, opksshBin, "login", "--issuer", op.Issuer(), "--client-id", "opkssh",
		"--no-browser", "--redirect-uri", redirect, "--key-file", key, "--timeout", "60s")
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := newURLWatcher()
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { // kills opkssh if the test ends before it does
		cancel()
		<-exited
	})

	var loginURL string
	select {
	case loginURL = <-stderr.url:
	case <-exited:
		t.Fatalf("opkssh login exited before printing the login URL (%v):\nstdout: %s\nstderr: %s", waitErr, stdout.String(), stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("opkssh login printed no login URL within 15s; stderr so far:\n%s", stderr)
	}
	t.Logf("opkssh waits at %s (%.1fs)", loginURL, time.Since(start).Seconds())

	// The browser. The leftover check is registered before Chromium starts so that it also
	// runs when the test fails halfway; it runs after browserLogin has stopped Chromium.
	chromeDir := t.TempDir()
	t.Cleanup(func() { checkNoChromium(t, chromeDir) })
	browserStart := time.Now()
	text, err := browserLogin(t, loginURL, chromeDir)
	if err != nil {
		t.Fatalf("Chromium login failed: %v\nfinal page:\n%s\nopkssh stderr:\n%s", err, text, stderr)
	}
	t.Logf("Chromium logged in and stopped (%.1fs); final page: %q", time.Since(browserStart).Seconds(), text)

	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("opkssh login still runs 15s after the browser was told it is logged in; stderr:\n%s", stderr)
	}
	if waitErr != nil || !strings.Contains(stdout.String(), "Logged in as alice@example.com") {
		t.Fatalf("opkssh login: %v\nstdout: %s\nstderr: %s", waitErr, stdout.String(), stderr)
	}
	if _, err := os.Stat(sshcert.CertPath(key)); err != nil {
		t.Fatalf("login reported success but wrote no certificate: %v", err)
	}

	if os.Geteuid() != 0 {
		t.Skip("the Chromium login passed; skipping the verify step, whose policy file must be root-owned: run as root")
	}
	b64, typ := certArgs(t, key)
	pol := filepath.Join(dir, "policies.yaml")
	writeFile(t, pol, policy(op.Issuer(), "rules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n"))
	r := opkssh(t, nil, "verify", "alice", b64, typ, "--policy", pol)
	line := regexp.MustCompile(`^cert-authority,principals="opkssh-wildcard" ecdsa-sha2-nistp256 [A-Za-z0-9+/=]+\n$`)
	if r.code != 0 || !line.MatchString(r.stdout) {
		t.Fatalf("verify alice: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("total %.1fs", time.Since(start).Seconds())
}

// browserLogin opens loginURL in a headless Chromium that keeps its files under dir, signs in
// as alice and returns the text of the page it ends on. On failure the text is what the page
// showed last, for the error message. Chromium is stopped when it returns.
func browserLogin(t *testing.T, loginURL, dir string) (string, error) {
	t.Helper()
	profile := filepath.Join(dir, "profile")
	home := filepath.Join(dir, "home") // so Chromium leaves the real home alone
	for _, d := range []string{profile, home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", err
		}
	}
	var output syncBuffer
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // as root, Chromium refuses to start without it
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		// Containers often have a 64 MB /dev/shm; Debian's wrapper means to add this
		// flag then, but its size check can fail (findmnt may print two lines).
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.Env("HOME=" + home),
		chromedp.CombinedOutput(&output),
	}
	// The whole browser's life is bounded, so that a Chromium that hangs while starting
	// fails the test instead of blocking it.
	life, stopLife := context.WithTimeout(context.Background(), 60*time.Second)
	defer stopLife()
	allocCtx, stopAlloc := chromedp.NewExecAllocator(life, opts...)
	defer stopAlloc() // waits for the browser process to exit
	browserCtx, stopBrowser := chromedp.NewContext(allocCtx)
	defer stopBrowser()
	defer func() {
		// Runs first: a graceful close lets Chromium take down its own helper
		// processes. The cancels deferred before it then kill whatever is left and
		// wait for the browser process to exit.
		cctx, ccancel := context.WithTimeout(browserCtx, 5*time.Second)
		defer ccancel()
		chromedp.Cancel(cctx)
	}()

	// The first action starts the browser; it must not carry the step timeout.
	if err := chromedp.Do(browserCtx); err != nil {
		return "", fmt.Errorf("starting %s: %w\nChromium printed:\n%s", chromiumPath, err, output.String())
	}
	steps, stopSteps := context.WithTimeout(browserCtx, 45*time.Second)
	defer stopSteps()
	err := chromedp.Do(steps,
		chromedp.Navigate(loginURL), // 302 to the OP's form
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "alice@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "any password"),
		chromedp.Click(chromedp.ID("login")),
	)
	if err != nil {
		return pageText(browserCtx), err
	}
	// The click posts the form; the OP redirects to opkssh's callback, which answers once it
	// has redeemed the code. Navigation replaces the page's JavaScript context, so poll
	// from here rather than with an in-page predicate that a navigation would abort.
	var last string
	for {
		last = pageText(steps)
		switch {
		case strings.Contains(last, "You are logged in"):
			return last, nil
		case strings.Contains(last, "Login failed"), strings.Contains(last, "Wrong username or password"),
			strings.Contains(last, "Invalid authorization request"), strings.Contains(last, "login link is stale"):
			return last, errors.New("the browser ended on an error page")
		}
		select {
		case <-steps.Done():
			if last == "" {
				last = pageText(browserCtx)
			}
			return last, fmt.Errorf("waiting for %q: %w", "You are logged in", steps.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pageText returns the address and visible text of the current page, or "" if the page cannot
// answer now (for example, in the middle of a navigation).
func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.readyState === "complete" && document.body ? location.href + "\n" + document.body.innerText : ""`))
	if err != nil {
		return ""
	}
	return s
}

// checkNoChromium fails the test if any process still mentions dir on its command line, and
// kills those processes. Chromium passes --user-data-dir to its helper processes, and its crash
// handler, which detaches from it, gets a database path under $HOME, so both must be in dir.
func checkNoChromium(t *testing.T, dir string) {
	t.Helper()
	var left map[int]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = processesMentioning(dir + "/")
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	var b strings.Builder
	for pid, cmdline := range left {
		fmt.Fprintf(&b, "  %d %.300s\n", pid, cmdline)
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
	t.Errorf("Chromium processes outlived the test by 5s (killed now):\n%s", b.String())
}

// processesMentioning returns the command lines of the other processes whose command line
// contains s, as `pgrep -f` would find them, without needing procps. Chromium's helpers
// rewrite their command line into one string (setproctitle), so this looks for a substring
// and not for a whole argument.
func processesMentioning(s string) map[int]string {
	found := map[int]string{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return found
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmdline := strings.ReplaceAll(string(data), "\x00", " "); strings.Contains(cmdline, s) {
			found[pid] = cmdline
		}
	}
	return found
}

// urlWatcher is opkssh login's stderr: it keeps everything and sends the login URL on url
// once a complete line holds it.
type urlWatcher struct {
	url  chan string
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
}

var loginURLLine = regexp.MustCompile(`(?m)^\s*(http://(?:127\.0\.0\.1|localhost):\d+/login)\s*$`)

func newURLWatcher() *urlWatcher { return &urlWatcher{url: make(chan string, 1)} }

func (w *urlWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		b := w.buf.Bytes()
		if m := loginURLLine.FindSubmatch(b[:bytes.LastIndexByte(b, '\n')+1]); m != nil {
			w.url <- string(m[1])
			w.sent = true
		}
	}
	return len(p), nil
}

func (w *urlWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// syncBuffer collects Chromium's output, which chromedp writes from its own goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
