package e2e

// OpenID Providers we did not write. Our test OP agrees with our code about everything; these
// do not: zitadel/oidc's example OP has an issuer that ends in "/" and a username/password form,
// and oauth2-proxy/mockoidc serves under a path (/oidc) and wants a client secret. Both run here
// over https with a CA made for the test, which the workstation trusts through SSL_CERT_FILE
// (login has no CA option) and verify through the policy's ca_file. Each test goes the whole
// way: opkssh login, opkssh verify as sshd runs it, and an ssh login through a real sshd.
//
// These modules are linked into this test binary only, never into cmd/opkssh.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

// TestThirdPartyZitadelExampleOP logs in at zitadel/oidc's example OP, whose issuer is
// https://127.0.0.1:PORT/ (with the trailing slash), through its HTML login form.
func TestThirdPartyZitadelExampleOP(t *testing.T) {
	needSSHD(t)
	ca := newTestCA(t)
	issuer := startZitadelOP(t, ca)
	if !strings.HasSuffix(issuer, "/") {
		t.Fatalf("the point of this test is an issuer ending in '/'; discovery says %q", issuer)
	}
	// The example's native client puts the profile and email claims only into the userinfo
	// answer, not into the ID token (OIDC Core §5.4 allows that), so the rule matches sub.
	thirdPartyLogin(t, thirdPartyOP{
		issuer:   issuer,
		clientID: zitadelClientID,
		ca:       ca,
		identity: "sub: " + zitadelUser.ID,
		who:      zitadelUser.ID,
		browse: func(ctx context.Context, loginURL string) error {
			return formBrowser(ctx, ca.pool, loginURL, zitadelUser.Username, zitadelUser.Password)
		},
	})
}

// TestThirdPartyMockOIDC logs in at oauth2-proxy/mockoidc, whose issuer has a path
// (https://127.0.0.1:PORT/oidc) and which approves the login of a queued user without a form.
func TestThirdPartyMockOIDC(t *testing.T) {
	needSSHD(t)
	ca := newTestCA(t)
	m := startMockOIDC(t, ca)
	m.QueueUser(&mockoidc.MockUser{Subject: "mock-alice", Email: "alice@mock.example", EmailVerified: true})
	thirdPartyLogin(t, thirdPartyOP{
		issuer:       discoveredIssuer(t, ca, m.Issuer()),
		clientID:     m.ClientID,
		clientSecret: m.ClientSecret,
		ca:           ca,
		identity:     "email: alice@mock.example",
		who:          "alice@mock.example",
		browse: func(ctx context.Context, loginURL string) error {
			return formBrowser(ctx, ca.pool, loginURL, "", "")
		},
	})
}

// TestThirdPartyOPsStayInTests checks that the OPs above are linked into this test binary only:
// the opkssh binary that users install and sshd runs must not carry an OP's server code.
func TestThirdPartyOPsStayInTests(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../cmd/opkssh").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ../../cmd/opkssh: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "zitadel") || strings.Contains(pkg, "mockoidc") {
			t.Errorf("cmd/opkssh links %s", pkg)
		}
	}
}

// thirdPartyOP describes one OP for thirdPartyLogin.
type thirdPartyOP struct {
	issuer, clientID, clientSecret string
	ca                             *testCA
	identity                       string // the policy identity (YAML) that matches the user
	who                            string // what login says it logged in as
	// browse plays the user's browser from opkssh's loopback login URL to its callback page.
	browse func(ctx context.Context, loginURL string) error
}

// thirdPartyLogin runs login, verify and an ssh login through sshd against op.
func thirdPartyLogin(t *testing.T, op thirdPartyOP) {
	start := time.Now()
	e := startSSHD(t)
	caFile := filepath.Join(e.install.Dir, "op-ca.pem") // root-owned, readable by nobody
	if err := os.WriteFile(caFile, op.ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	pol := func(caFile string) string {
		ca := ""
		if caFile != "" {
			ca = "\n    ca_file: " + caFile
		}
		return fmt.Sprintf(`# written by the e2e test
version: 1
providers:
  thirdparty:
    issuer: %q
    client_ids: [%q]
    expiration: 24h%s
rules:
  - principals: [%s]
    provider: thirdparty
    identities:
      - %s
`, op.issuer, op.clientID, ca, userAllowed, op.identity)
	}
	if err := e.install.WritePolicy(pol(caFile)); err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(e.keys, "id_ecdsa")
	loginNoBrowser(t, op, key)
	t.Logf("login done (%.1fs)", time.Since(start).Seconds())

	t.Run("verify as sshd runs it", func(t *testing.T) {
		b64, typ := certArgs(t, key)
		from := e.logOffset(t)
		out, errOut, err := verifyAsNobody(t, e, e.install.Cache, userAllowed, b64, typ)
		line := regexp.MustCompile(`^cert-authority,principals="opkssh-wildcard" ecdsa-sha2-nistp256 [A-Za-z0-9+/=]+\n$`)
		if err != nil || !line.MatchString(out) {
			log, _ := os.ReadFile(e.install.Log)
			t.Fatalf("verify %s: %v\nstdout: %q\nstderr: %s\nlog:\n%s", userAllowed, err, out, errOut, log)
		}
		a := e.logSince(t, from)
		a.mustAll(t, "allow", "allowed")
		a.has(t, `"keys":"network"`)
		from = e.logOffset(t)
		if out, _, err := verifyAsNobody(t, e, e.install.Cache, userOther, b64, typ); err == nil || out != "" {
			t.Fatalf("verify %s (no rule) allowed: %q", userOther, out)
		}
		e.logSince(t, from).mustAll(t, "deny", "no_rule_for_principal")
	})
	t.Run("ssh through sshd", func(t *testing.T) {
		e.mustLogIn(t, userAllowed, key)
		e.mustBeRefused(t, userOther, key, "no_rule_for_principal")
	})
	// login kept the OP's refresh token beside the key: --if-needed renews the certificate with
	// it, without a browser (--no-browser and a short timeout make a browser login fail), and
	// verify accepts the PK token that now carries the OP's refreshed ID token.
	t.Run("refresh without a browser, then ssh", func(t *testing.T) {
		if _, err := os.Stat(provider.RefreshTokenPath(key)); err != nil {
			t.Fatalf("login kept no refresh token: %v", err)
		}
		before, _ := os.ReadFile(sshcert.CertPath(key))
		r := opkssh(t, op.loginEnv(t), op.loginArgs(t, key, "--if-needed", "--min-remaining", "48h", "--timeout", "5s")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Refreshed the login of "+op.who) {
			t.Fatalf("login --if-needed: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if after, _ := os.ReadFile(sshcert.CertPath(key)); bytes.Equal(before, after) {
			t.Fatal("the certificate was not renewed")
		}
		e.mustLogIn(t, userAllowed, key).has(t, `"refreshed":true`)
	})
	// The OP's certificate chains to nothing but our CA: without ca_file, verify (with a key
	// cache of its own, so that it must fetch) cannot reach the OP and denies.
	t.Run("without ca_file the OP is not trusted", func(t *testing.T) {
		if err := e.install.WritePolicy(pol("")); err != nil {
			t.Fatal(err)
		}
		b64, typ := certArgs(t, key)
		out, errOut, err := verifyAsNobody(t, e, nobodyDir(t, e), userAllowed, b64, typ)
		if err == nil || out != "" || !strings.Contains(errOut, `"reason":"keys_unavailable"`) ||
			!strings.Contains(errOut, "certificate signed by unknown authority") {
			t.Fatalf("verify without ca_file: %v\nstdout: %q\nstderr: %s", err, out, errOut)
		}
	})
	t.Logf("total %.1fs", time.Since(start).Seconds())
}

// loginEnv is the environment of opkssh login: a fresh HOME, and op's CA as the only trusted
// root (opkssh login has no CA option; Go reads SSL_CERT_FILE).
func (op thirdPartyOP) loginEnv(t *testing.T) []string {
	t.Helper()
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, certFile, string(op.ca.pem))
	return []string{"HOME=" + t.TempDir(), "SSL_CERT_FILE=" + certFile}
}

// loginArgs returns the arguments of `opkssh login --no-browser` at op with the key file key.
func (op thirdPartyOP) loginArgs(t *testing.T, key string, extra ...string) []string {
	t.Helper()
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"login", "--issuer", op.issuer, "--client-id", op.clientID, "--no-browser",
		"--redirect-uri", redirect, "--key-file", key}
	if op.clientSecret != "" {
		args = append(args, "--client-secret", op.clientSecret)
	}
	return append(args, extra...)
}

// loginNoBrowser runs `opkssh login --no-browser`, hands the printed loopback URL to op.browse
// and waits for login to write the certificate.
func loginNoBrowser(t *testing.T, op thirdPartyOP, key string) {
	t.Helper()
	args := op.loginArgs(t, key, "--timeout", "30s")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, opksshBin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, op.loginEnv(t)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := newURLWatcher()
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() { cancel(); <-exited }()

	select {
	case loginURL := <-stderr.url:
		if err := op.browse(ctx, loginURL); err != nil {
			t.Fatalf("browser: %v\nopkssh stderr:\n%s", err, stderr)
		}
	case <-exited:
		t.Fatalf("opkssh login exited before printing the login URL (%v):\nstdout: %s\nstderr: %s", waitErr, stdout.String(), stderr)
	case <-ctx.Done():
		t.Fatalf("opkssh login printed no login URL; stderr so far:\n%s", stderr)
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("opkssh login still runs 15s after the browser reached the callback; stderr:\n%s", stderr)
	}
	want := fmt.Sprintf("Logged in as %s (issuer %s)", op.who, op.issuer)
	if waitErr != nil || !strings.Contains(stdout.String(), want) {
		t.Fatalf("opkssh login: %v; want %q\nstdout: %s\nstderr: %s", waitErr, want, stdout.String(), stderr)
	}
}

// verifyAsNobody runs verify as sshd's AuthorizedKeysCommand does: as nobody, with an empty
// environment and RLIMIT_MEMLOCK 0, on the policy and log of e's install and the key cache in
// cacheDir.
func verifyAsNobody(t *testing.T, e *sshdEnv, cacheDir, principal, b64, typ string) (string, string, error) {
	t.Helper()
	uid, gid := nobodyIDs(t)
	in := e.install
	cmd := exec.Command("/bin/sh", "-c", `ulimit -l 0 && exec "$@"`, "sh", in.Binary, "verify", principal, b64, typ,
		"--policy", in.Policy, "--log-file", in.Log, "--cache-dir", cacheDir)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func nobodyIDs(t *testing.T) (int, int) {
	t.Helper()
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	return uid, gid
}

// nobodyDir returns a new empty directory in e's install that nobody owns, for a key cache.
func nobodyDir(t *testing.T, e *sshdEnv) string {
	t.Helper()
	dir, err := os.MkdirTemp(e.install.Dir, "cache-")
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := nobodyIDs(t)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// discoveredIssuer returns the issuer that the discovery document under base names: the policy
// must hold it exactly as the OP writes it.
func discoveredIssuer(t *testing.T, ca *testCA, base string) string {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	resp, err := hc.Get(strings.TrimSuffix(base, "/") + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Issuer == "" {
		t.Fatalf("discovery at %s: HTTP %s, issuer %q, %v", base, resp.Status, doc.Issuer, err)
	}
	return doc.Issuer
}

// testCA is a throwaway certificate authority and a server certificate for 127.0.0.1.
type testCA struct {
	pem    []byte // the CA certificate
	pool   *x509.CertPool
	server tls.Certificate
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "opkssh e2e throwaway CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testCA{
		pem:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pool:   pool,
		server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
	}
}

// listenTLS listens on a free 127.0.0.1 port with ca's server certificate.
func (ca *testCA) listenTLS(t *testing.T) (net.Listener, *tls.Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12}
	return tls.NewListener(ln, cfg), cfg
}

const zitadelClientID = "opkssh"

// zitadelUser is the example OP's only account here.
var zitadelUser = storage.User{
	ID:                "zitadel-alice",
	Username:          "alice",
	Password:          "correct horse battery staple",
	FirstName:         "Alice",
	LastName:          "Example",
	Email:             "alice@zitadel.example",
	EmailVerified:     true,
	PreferredLanguage: language.English,
}

// zitadelUsers is the example OP's storage.UserStore.
type zitadelUsers struct{}

func (zitadelUsers) GetUserByID(id string) *storage.User {
	if id == zitadelUser.ID {
		u := zitadelUser
		return &u
	}
	return nil
}

func (zitadelUsers) GetUserByUsername(name string) *storage.User {
	if name == zitadelUser.Username {
		u := zitadelUser
		return &u
	}
	return nil
}

func (zitadelUsers) ExampleClientID() string { return storage.ServiceUserID }

// startZitadelOP serves zitadel/oidc's example OP on https://127.0.0.1:PORT/ with a public native
// client "opkssh" registered for opkssh's default loopback redirect URIs (any port: RFC 8252).
// It returns the issuer as the OP's discovery document names it.
func startZitadelOP(t *testing.T, ca *testCA) string {
	t.Helper()
	ln, _ := ca.listenTLS(t)
	issuer := fmt.Sprintf("https://%s/", ln.Addr())
	storage.RegisterClients(storage.NativeClient(zitadelClientID, provider.DefaultRedirectURIs()...))
	logs := &syncBuffer{}
	// SetupServer makes this logger the process's slog default; nothing else here uses slog.
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	router := exampleop.SetupServer(issuer, storage.NewStorage(zitadelUsers{}), logger, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("zitadel example OP log:\n%s", logs)
		}
	})
	return discoveredIssuer(t, ca, issuer)
}

// startMockOIDC serves mockoidc on https://127.0.0.1:PORT/oidc.
func startMockOIDC(t *testing.T, ca *testCA) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ClientID = "opkssh"
	ln, cfg := ca.listenTLS(t)
	// mockoidc serves plain HTTP on the listener it is given; its tls.Config only makes it
	// write https:// into its issuer and endpoints.
	if err := m.Start(ln, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// formBrowser plays a browser that trusts the pool's CA: it opens loginURL, follows the
// redirects, and if it lands on a page with a login form (inputs named username and password),
// fills it in and submits it once. It succeeds when the final page is opkssh's "You are logged
// in" page.
func formBrowser(ctx context.Context, pool *x509.CertPool, loginURL, username, password string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	page, err := browserGet(ctx, hc, http.MethodGet, loginURL, nil)
	if err != nil {
		return err
	}
	if action, fields, ok := loginFormOf(page); ok {
		if username == "" {
			return fmt.Errorf("unexpected login form at %s", page.url)
		}
		fields.Set("username", username)
		fields.Set("password", password)
		target, err := page.url.Parse(action)
		if err != nil {
			return fmt.Errorf("login form at %s: action %q: %w", page.url, action, err)
		}
		if page, err = browserGet(ctx, hc, http.MethodPost, target.String(), fields); err != nil {
			return err
		}
	} else if username != "" {
		return fmt.Errorf("no login form at %s (HTTP %d):\n%.2000s", page.url, page.status, page.body)
	}
	if page.status != http.StatusOK || !strings.Contains(page.body, "You are logged in") {
		return fmt.Errorf("ended at %s%s with HTTP %d:\n%.2000s", page.url.Host, page.url.Path, page.status, page.body)
	}
	return nil
}

type browserPage struct {
	url    *url.URL
	status int
	body   string
}

func browserGet(ctx context.Context, hc *http.Client, method, u string, form url.Values) (*browserPage, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &browserPage{url: resp.Request.URL, status: resp.StatusCode, body: string(data)}, nil
}

var (
	formTagRE  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputTagRE = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRE     = regexp.MustCompile(`(?s)([a-zA-Z-]+)\s*=\s*"([^"]*)"`)
)

// loginFormOf finds the first form of page with inputs named username and password and returns
// its action and the values of all its named inputs.
func loginFormOf(page *browserPage) (string, url.Values, bool) {
	for _, f := range formTagRE.FindAllStringSubmatch(page.body, -1) {
		fields := url.Values{}
		for _, in := range inputTagRE.FindAllStringSubmatch(f[2], -1) {
			a := tagAttrs(in[1])
			if name := a.Get("name"); name != "" {
				fields.Set(name, a.Get("value"))
			}
		}
		if fields.Has("username") && fields.Has("password") {
			return tagAttrs(f[1]).Get("action"), fields, true
		}
	}
	return "", nil, false
}

func tagAttrs(tag string) url.Values {
	a := url.Values{}
	for _, m := range attrRE.FindAllStringSubmatch(tag, -1) {
		a.Set(strings.ToLower(m[1]), html.UnescapeString(m[2]))
	}
	return a
}
