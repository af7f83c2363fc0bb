package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/testop"
)

// aliceOP starts a test OP with one user, alice, for the length of the test.
func aliceOP(t *testing.T) *testop.Server {
	t.Helper()
	op, err := testop.Start(testop.Options{Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op
}

// lockedBuffer is a bytes.Buffer that Login's goroutines and the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls the status output until re matches it and returns the first submatch.
func waitFor(t *testing.T, status *lockedBuffer, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(status.String()); m != nil {
			return m[len(m)-1]
		}
	}
	t.Fatalf("no %q in the status output:\n%s", re, status)
	return ""
}

// finalRedirect plays a browser on another machine: it follows the authorization URL to the OP
// (in auto-approve mode) and returns the address of the redirect back to the client, which it
// does not follow, as nothing would answer there.
func finalRedirect(t *testing.T, authURL string) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the OP answered %s, want a redirect", resp.Status)
	}
	return resp.Header.Get("Location")
}

var authURLRE = regexp.MustCompile(`(?m)^or this one in a browser on any machine:\n  (\S+)$`)

// pasteLogin starts a browser login that reads pasted lines from the returned writer, lets the
// OP approve it without the browser coming back, and returns the address the browser ended on.
func pasteLogin(t *testing.T, op *testop.Server) (paste *io.PipeWriter, final string, status *lockedBuffer, result <-chan error) {
	t.Helper()
	op.SetAutoApprove("alice")
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	status = &lockedBuffer{}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cfg := Config{Issuer: op.Issuer(), ClientID: "opkssh", RedirectURIs: []string{freeRedirect(t)}}
	done := make(chan error, 1)
	go func() {
		res, err := Login(ctx, cfg, LoginOptions{Signer: key, Alg: "ES256", Status: status, Paste: pr})
		if err == nil && res.Claims.Subject != "alice" {
			t.Errorf("logged in as %q, want alice", res.Claims.Subject)
		}
		done <- err
	}()
	final = finalRedirect(t, waitFor(t, status, authURLRE))
	return pw, final, status, done
}

func TestLoginPastedRedirect(t *testing.T) {
	op := aliceOP(t)

	paste, final, status, done := pasteLogin(t, op)
	if !strings.Contains(status.String(), pasteHint) {
		t.Errorf("no hint to paste in the status output:\n%s", status)
	}
	u, err := url.Parse(final)
	if err != nil {
		t.Fatal(err)
	}
	// Another login's address (same code, other state) is refused and the login goes on.
	q := u.Query()
	q.Set("state", "someone-elses")
	forged := *u
	forged.RawQuery = q.Encode()
	io.WriteString(paste, forged.String()+"\n")
	waitFor(t, status, regexp.MustCompile(`(?m)^(Refused: this address belongs to another login \(its state does not match\)\.)`))
	// So is a line that is no such address.
	io.WriteString(paste, "http://example.com/somewhere?code=x\n")
	waitFor(t, status, regexp.MustCompile(`(?m)^(That is not the address the login ended on)`))
	select {
	case err := <-done:
		t.Fatalf("login ended before the right address was pasted: %v", err)
	default:
	}
	tokensBefore := op.Requests("/token")
	io.WriteString(paste, "  "+final+"\n")
	if err := <-done; err != nil {
		t.Fatalf("login with the pasted address: %v", err)
	}
	if n := op.Requests("/token") - tokensBefore; n != 1 {
		t.Errorf("%d token requests, want 1 (only for the right address)", n)
	}
}

func TestLoginPastedError(t *testing.T) {
	op := aliceOP(t)

	paste, final, _, done := pasteLogin(t, op)
	u, _ := url.Parse(final)
	q := url.Values{"state": {u.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"the user said no"}}
	u.RawQuery = q.Encode()
	io.WriteString(paste, u.String()+"\n")
	err := <-done
	if err == nil || err.Error() != "the OP refused the login: access_denied: the user said no" {
		t.Fatalf("err = %v", err)
	}
}
