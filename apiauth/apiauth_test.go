package apiauth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
)

// recorder keeps the last request the signing transport sent, to replay and tamper with it.
type recorder struct {
	header http.Header
	body   []byte
	url    string
	method string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.header, r.url, r.method = req.Header.Clone(), req.URL.String(), req.Method
	r.body = nil
	if req.Body != nil {
		r.body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(r.body))
	}
	return http.DefaultTransport.RoundTrip(req)
}

type fixture struct {
	srv    *httptest.Server
	client *http.Client
	rec    *recorder
	signer ssh.Signer
	cert   *ssh.Certificate
	v      *Verifier
}

func setup(t *testing.T, signers string) *fixture {
	t.Helper()
	op, err := testop.Start(testop.Options{Users: []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cred, err := logintest.Login(ctx, op, "alice", "ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("api.yaml", []byte("version: 1\nproviders:\n  test:\n    issuer: "+op.Issuer()+"\n    client_ids: [opkssh]\n    expiration: 24h\nsigners:\n"+signers))
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Policy: pol}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, _ := IdentityFrom(r.Context())
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]any{"email": id.Email, "sub": id.Subject, "path": r.URL.Path, "body": string(body)})
	})
	srv := httptest.NewServer(v.Middleware(mux))
	t.Cleanup(srv.Close)
	signer, _ := ssh.NewSignerFromSigner(cred.Signer)
	rec := &recorder{}
	return &fixture{srv: srv, rec: rec, signer: signer, cert: cred.Cert, v: v,
		client: &http.Client{Transport: &Transport{Signer: signer, Cert: cred.Cert, Base: rec}}}
}

func (f *fixture) resend(t *testing.T, method, url string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSignedRequests(t *testing.T) {
	f := setup(t, "  - provider: test\n    identities: [{email: alice@example.com}]\n")

	resp, err := f.client.Post(f.srv.URL+"/orders?limit=5&sort=asc", "application/json", strings.NewReader(`{"item":"book"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got["email"] != "alice@example.com" || got["sub"] != "alice" || got["body"] != `{"item":"book"}` {
		t.Fatalf("status %d, %v", resp.StatusCode, got)
	}
	okHeader, okBody, okURL := f.rec.header, f.rec.body, f.rec.url

	refused := func(name string, wantStatus int, wantReason string, method, url string, body []byte, h http.Header) {
		t.Helper()
		status, text := f.resend(t, method, url, body, h)
		if status != wantStatus || !strings.HasPrefix(text, wantReason+":") {
			t.Errorf("%s: %d %q, want %d %s", name, status, text, wantStatus, wantReason)
		} else {
			t.Logf("%s: %d %s", name, status, strings.TrimSpace(text))
		}
	}
	refused("replayed", 401, ReasonReplay, "POST", okURL, okBody, okHeader)
	refused("re-targeted path", 401, "bad_signature", "POST", f.srv.URL+"/admin?limit=5&sort=asc", okBody, okHeader)
	refused("re-targeted query", 401, "bad_signature", "POST", f.srv.URL+"/orders?limit=500&sort=asc", okBody, okHeader)
	refused("re-targeted method", 401, "bad_signature", "PUT", okURL, okBody, okHeader)
	refused("tampered body", 401, "bad_signature", "POST", okURL, []byte(`{"item":"car"}`), okHeader)
	refused("unsigned", 401, ReasonUnsigned, "GET", okURL, nil, http.Header{})
	h := okHeader.Clone()
	h.Set(HeaderTimestamp, "1")
	refused("timestamp changed", 401, ReasonTimestamp, "POST", okURL, okBody, h)
	h = okHeader.Clone()
	h.Set(HeaderNonce, strings.Repeat("0", 32))
	refused("nonce changed", 401, "bad_signature", "POST", okURL, okBody, h)
	h = okHeader.Clone()
	h.Set(HeaderSignature, "not base64!")
	refused("garbage signature", 401, "signature_malformed", "POST", okURL, okBody, h)

	// Another host: the same request sent to a second server with the same policy.
	other := httptest.NewServer(f.v.Middleware(http.NotFoundHandler()))
	defer other.Close()
	refused("re-targeted host", 401, "bad_signature", "POST", other.URL+"/orders?limit=5&sort=asc", okBody, okHeader)

	// A request signed a while ago, outside the window, is refused although its signature holds.
	old := &http.Client{Transport: &Transport{Signer: f.signer, Cert: f.cert, Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}}
	resp, err = old.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("old timestamp: %d", resp.StatusCode)
	}
	// A second, fresh request goes through (a new nonce).
	resp, err = f.client.Get(f.srv.URL + "/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("second request: %d", resp.StatusCode)
	}
}

func TestSignerNotAccepted(t *testing.T) {
	f := setup(t, "  - provider: test\n    identities: [{email: bob@example.com}]\n")
	resp, err := f.client.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "signer_not_allowed") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestNamespaceIsolation(t *testing.T) {
	// A signers entry for other namespaces only (e.g. git) does not accept API requests.
	f := setup(t, "  - provider: test\n    identities: [{email: alice@example.com}]\n    namespaces: [git]\n")
	resp, err := f.client.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}
