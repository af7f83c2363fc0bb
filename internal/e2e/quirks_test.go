package e2e

// TestQuirks meets the habits of production OPs, one row each, through the real binary: the test
// OP is started with one of its Quirks switches, the real `opkssh login` runs against it with the
// scripted browser, and `opkssh verify` runs as sshd runs it (as nobody, empty environment,
// working directory /, RLIMIT_MEMLOCK 0, from a root-owned directory). Each row asserts the
// decision and the reason code of the decision log.
//
//	quirk                                                     expected
//	--------------------------------------------------------  ------------------------------------
//	issuer with a trailing '/' (root; /realms/x/)             allowed (policy: the exact issuer)
//	RS256 … PS512, ES256 … ES512, EdDSA                       allowed
//	no kid, the JWKS holds three keys                         allowed (verify tries each key)
//	ML-DSA-44 (AKP), unknown kty, RSA "enc" keys in the JWKS  allowed, also without kid
//	OP clock 90 s ahead                                       allowed, certificate valid now
//	OP clock 10 min ahead                                     issued_in_future
//	JWKS Cache-Control no-store, no-cache, max-age=0, =60     allowed, twice (network, then cache)
//	azp another client, aud [opkssh, it]                      audience_mismatch
//	azp opkssh, aud [opkssh, another]                         allowed
//	nbf 4 min after iat (login allows 5 min of skew)          token_not_yet_valid
//	nbf 10 min after iat (login refuses it)                   token_not_yet_valid
//	iss without scheme, ordinary issuer (login refuses it)    wrong_issuer or unknown_issuer
//	Entra tenants, policy BASE/{tenantid}/v2.0, tenants [T1]  T1's user allowed; T2's user denied
//	device grant that drops the nonce                         login --device fails, names the nonce
//
// Where `opkssh login` itself refuses the OP's token (nbf 10 min ahead, scheme-less iss: go-oidc
// checks both), the row asserts that refusal, then takes the token the OP issued through a plain
// OAuth client, packs it into a PK token and certificate as login would, and gives it to verify:
// the server must not rely on the client having checked.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/openpubkey/openpubkey/pktoken"
	"golang.org/x/oauth2"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

// quirkRow is one row of TestQuirks.
type quirkRow struct {
	name   string
	opts   testop.Options // Users and AutoApprove are filled in unless set
	user   string         // who logs in; default alice@example.com
	issuer func(op *testop.Server) string
	// provider is the provider block of policies.yaml after "test:\n"; default: issuer, client
	// ID and expiration.
	provider func(op *testop.Server) string
	// loginRefuses: `opkssh login` must fail; the OP's token is then taken by a plain client.
	loginRefuses bool
	device       bool     // log in with --device
	loginSays    string   // with device or loginRefuses: a word login's output must contain
	want         []string // acceptable reasons; "allowed" for an allowed login
	verifyTwice  bool     // run verify again, for the key cache
}

func TestQuirks(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run the OP quirks as root (verify runs as nobody from a root-owned directory)")
		}
		t.Skip("verify must run as nobody from a root-owned directory; run as root")
	}
	start := time.Now()
	in, err := sshdtest.NewInstall(opksshBin, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Remove() })

	tenants := []testop.Tenant{{ID: "11111111-aaaa", Domains: []string{"contoso.onmicrosoft.com"}}, {ID: "22222222-bbbb"}}
	entraUsers := []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Tenant: tenants[0].ID},
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true, Tenant: tenants[1].ID},
	}
	entraPolicy := func(op *testop.Server) string {
		return fmt.Sprintf("    issuer: %q\n    tenants: [%s]\n    client_ids: [opkssh]\n    expiration: 24h\n", op.Issuer(), tenants[0].ID)
	}
	tenantIssuer := func(id string) func(*testop.Server) string {
		return func(op *testop.Server) string { return op.TenantIssuer(id) }
	}
	allowed := []string{"allowed"}

	rows := []quirkRow{
		{name: "issuer http://127.0.0.1:PORT/", opts: testop.Options{Quirks: testop.Quirks{IssuerPath: "/"}}, want: allowed},
		{name: "issuer .../realms/x/", opts: testop.Options{Quirks: testop.Quirks{IssuerPath: "/realms/x/"}}, want: allowed},
	}
	for _, alg := range testop.Algs {
		rows = append(rows, quirkRow{name: "alg " + alg, opts: testop.Options{Alg: alg, Keys: 1}, want: allowed})
	}
	rows = append(rows, []quirkRow{
		{name: "no kid, three keys in the JWKS", opts: testop.Options{Keys: 3, Quirks: testop.Quirks{NoKID: true}}, want: allowed},
		{name: "AKP, unknown kty and enc keys in the JWKS", opts: testop.Options{Quirks: testop.Quirks{ForeignJWKs: true}}, want: allowed},
		{name: "foreign keys in the JWKS and no kid", opts: testop.Options{Quirks: testop.Quirks{ForeignJWKs: true, NoKID: true}}, want: allowed},
		{name: "OP clock 90s ahead", opts: testop.Options{Quirks: testop.Quirks{ClockOffset: 90 * time.Second}}, want: allowed},
		{name: "OP clock 10min ahead", opts: testop.Options{Quirks: testop.Quirks{ClockOffset: 10 * time.Minute}}, want: []string{"issued_in_future"}},
	}...)
	for _, cc := range []string{"no-store", "no-cache", "max-age=0", "max-age=60"} {
		rows = append(rows, quirkRow{name: "JWKS Cache-Control " + cc, opts: testop.Options{Keys: 1, Quirks: testop.Quirks{JWKSCacheControl: cc}}, want: allowed, verifyTwice: true})
	}
	rows = append(rows, []quirkRow{
		{name: "azp another client", opts: testop.Options{Quirks: testop.Quirks{AZP: "other-client"}}, want: []string{"audience_mismatch"}},
		{name: "azp our client among two audiences", opts: testop.Options{Quirks: testop.Quirks{AZP: "opkssh", ExtraAudiences: []string{"other-client"}}}, want: allowed},
		{name: "nbf 4min after iat", opts: testop.Options{Quirks: testop.Quirks{NotBefore: 4 * time.Minute}}, want: []string{"token_not_yet_valid"}},
		{name: "nbf 10min after iat", opts: testop.Options{Quirks: testop.Quirks{NotBefore: 10 * time.Minute}}, loginRefuses: true, loginSays: "nbf",
			want: []string{"token_not_yet_valid"}},
		{name: "iss without scheme, ordinary issuer", opts: testop.Options{Quirks: testop.Quirks{SchemelessIss: true}}, loginRefuses: true, loginSays: "issue",
			want: []string{"wrong_issuer", "unknown_issuer"}},
		{name: "Entra: user of an allowed tenant", opts: testop.Options{Users: entraUsers, Quirks: testop.Quirks{Tenants: tenants}},
			issuer: tenantIssuer(tenants[0].ID), provider: entraPolicy, want: allowed},
		{name: "Entra: user of another tenant", opts: testop.Options{Users: entraUsers, Quirks: testop.Quirks{Tenants: tenants}}, user: "bob@example.com",
			issuer: tenantIssuer(tenants[1].ID), provider: entraPolicy, want: []string{"unknown_issuer", "wrong_issuer"}},
		{name: "device grant drops the nonce", opts: testop.Options{Quirks: testop.Quirks{DeviceDropsNonce: true}}, device: true, loginSays: "nonce"},
	}...)

	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			rowStart := time.Now()
			q := newQuirkCase(t, in, i, row)
			q.run(t)
			t.Logf("%.1fs", time.Since(rowStart).Seconds())
		})
	}
	t.Logf("%d rows in %.1fs", len(rows), time.Since(start).Seconds())
}

// quirkCase is a row being run: its OP, and its files inside the root-owned install directory.
type quirkCase struct {
	row    quirkRow
	op     *testop.Server
	in     *sshdtest.Install
	dir    string // root-owned, 0755
	issuer string // what login is given
	user   string
	nobody [2]uint32 // uid, gid
	runs   int
}

func newQuirkCase(t *testing.T, in *sshdtest.Install, i int, row quirkRow) *quirkCase {
	t.Helper()
	opts := row.opts
	if opts.Users == nil {
		opts.Users = []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}
	}
	who := row.user
	if who == "" {
		who = "alice@example.com"
	}
	// Auto-approve serves the device flow too; the browser rows would pass the form as well.
	opts.AutoApprove = who
	op, err := testop.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	dir := filepath.Join(in.Dir, "row"+strconv.Itoa(i))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	cache := filepath.Join(dir, "cache")
	if err := os.Mkdir(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cache, uid, gid); err != nil {
		t.Fatal(err)
	}
	issuer := op.Issuer()
	if row.issuer != nil {
		issuer = row.issuer(op)
	}
	block := fmt.Sprintf("    issuer: %q\n    client_ids: [opkssh]\n    expiration: 24h\n", op.Issuer())
	if row.provider != nil {
		block = row.provider(op)
	}
	pol := "# written by TestQuirks\nversion: 1\nproviders:\n  test:\n" + block +
		"rules:\n  - principals: [alice]\n    provider: test\n    identities:\n      - email: alice@example.com\n      - email: bob@example.com\n"
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	return &quirkCase{row: row, op: op, in: in, dir: dir, issuer: issuer, user: who, nobody: [2]uint32{uint32(uid), uint32(gid)}}
}

func (q *quirkCase) run(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id_ecdsa")
	args := []string{"login", "--issuer", q.issuer, "--client-id", "opkssh", "--key-file", key, "--timeout", "20s"}
	if q.row.device {
		args = append(args, "--device", "--no-qr")
	} else {
		redirect, err := logintest.FreeRedirectURI()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--redirect-uri", redirect)
	}
	r := opkssh(t, []string{"HOME=" + t.TempDir(), "FAKEBROWSER_USER=" + q.user}, args...)
	out := r.stdout + r.stderr
	var c cred
	switch {
	case q.row.device:
		// RFC 8628 has no nonce; an OP that drops it gives a token that commits to no key.
		if r.code == 0 || !strings.Contains(strings.ToLower(out), q.row.loginSays) {
			t.Fatalf("device login against an OP that drops the nonce: exit %d, want a failure naming %q:\n%s", r.code, q.row.loginSays, out)
		}
		t.Logf("login --device refused: %s", lastLine(r.stderr))
		return
	case q.row.loginRefuses:
		if r.code == 0 || !strings.Contains(out, q.row.loginSays) {
			t.Fatalf("login accepted the OP's token (exit %d; want a failure naming %q):\n%s", r.code, q.row.loginSays, out)
		}
		t.Logf("login refused: %s", lastLine(r.stderr))
		c = q.tokenByPlainClient(t)
	default:
		if r.code != 0 || !strings.Contains(r.stdout, "Logged in as "+q.user) {
			t.Fatalf("login as %s failed (exit %d):\n%s", q.user, r.code, out)
		}
		cert, err := sshcert.ReadCertFile(sshcert.CertPath(key))
		if err != nil {
			t.Fatal(err)
		}
		if now := uint64(time.Now().Unix()); q.row.want[0] == "allowed" && cert.ValidAfter > now {
			t.Errorf("the certificate is valid only from %v, %ds from now (the OP's clock, not the workstation's)",
				time.Unix(int64(cert.ValidAfter), 0), cert.ValidAfter-now)
		}
		c.b64, c.typ = certArgs(t, key)
	}
	runs := 1
	if q.row.verifyTwice {
		runs = 2
	}
	for range runs {
		q.verify(t, c)
	}
}

// verify runs `opkssh verify alice %k %t` as sshd does and checks the decision.
func (q *quirkCase) verify(t *testing.T, c cred) {
	t.Helper()
	q.runs++
	logFile := filepath.Join(q.dir, "verify"+strconv.Itoa(q.runs)+".log")
	if err := os.WriteFile(logFile, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(logFile, int(q.nobody[0]), int(q.nobody[1])); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := execAsNobody(ctx, q.nobody, q.in.Binary, "verify", "alice", c.b64, c.typ,
		"--policy", filepath.Join(q.dir, "policies.yaml"), "--log-file", logFile, "--cache-dir", filepath.Join(q.dir, "cache"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running verify: %v", err)
	}
	if strings.Contains(stderr.String(), "panic") {
		t.Fatalf("verify panicked: %s", stderr.String())
	}
	_, decision := decisionLog(t, logFile)
	reason, _ := decision["reason"].(string)
	t.Logf("verify #%d: exit %d, decision %v, reason %s, keys %v, detail %v", q.runs, code, decision["decision"], reason, decision["keys"], decision["detail"])
	want := q.row.want
	if want[0] == "allowed" {
		if code != 0 || !strings.HasPrefix(stdout.String(), "cert-authority,") || strings.Count(stdout.String(), "\n") != 1 || reason != "allowed" {
			t.Fatalf("want allowed: exit %d, stdout %q, reason %q, detail %v", code, stdout.String(), reason, decision["detail"])
		}
		return
	}
	if code != 1 || stdout.Len() != 0 {
		t.Fatalf("want denied (%s): exit %d, stdout %q, reason %q", strings.Join(want, " or "), code, stdout.String(), reason)
	}
	for _, w := range want {
		if reason == w {
			return
		}
	}
	t.Fatalf("denied with reason %q, want %s; detail: %v", reason, strings.Join(want, " or "), decision["detail"])
}

// tokenByPlainClient logs in at the OP with a plain OAuth client that checks nothing, with a
// nonce committing to a fresh key, and returns the certificate login would have made of the
// OP's answer.
func (q *quirkCase) tokenByPlainClient(t *testing.T) cred {
	t.Helper()
	signer, alg := logintest.NewKey("ecdsa")
	cic, nonce, err := provider.NewClientInstance(signer, alg)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		w.Write([]byte("ok"))
	}))
	defer cb.Close()
	cfg := oauth2.Config{ClientID: "opkssh", RedirectURL: cb.URL + "/login-callback", Scopes: provider.DefaultScopes(),
		Endpoint: oauth2.Endpoint{AuthURL: q.op.URL() + "/authorize", TokenURL: q.op.URL() + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := testop.Browse(ctx, cfg.AuthCodeURL("state", oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), "", ""); err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Exchange(ctx, <-codes, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	cicToken, err := cic.Sign(signer, alg, []byte(idt))
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := pktoken.New([]byte(idt), cicToken)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := pkt.Compact()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	wrapped, err := logintest.Wrap(signer, compact, now.Add(-time.Minute), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return cred{wrapped.CertB64, wrapped.Type}
}

// execAsNobody prepares name args as sshd runs an AuthorizedKeysCommand: as the given uid and
// gid, with an empty environment, in /, with RLIMIT_MEMLOCK 0.
func execAsNobody(ctx context.Context, ids [2]uint32, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `ulimit -l 0 && exec "$@"`, "sh", name}, args...)...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: ids[0], Gid: ids[1]}}
	return cmd
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
