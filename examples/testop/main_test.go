package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadUsers(t *testing.T) {
	path := writeFile(t, `
- subject: carol
  email: carol@example.com
  email_verified: true
  groups: [ssh-users]
  amr: [pwd, mfa]
  extra:
    realm_access: {roles: [admin]}
  password: secret
- subject: dave
`)
	users, err := loadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Subject != "carol" || !users[0].EmailVerified || users[0].Password != "secret" || users[1].Subject != "dave" {
		t.Fatalf("users = %+v", users)
	}
	roles := users[0].Extra["realm_access"].(map[string]any)["roles"].([]any)
	if len(roles) != 1 || roles[0] != "admin" {
		t.Errorf("extra = %v", users[0].Extra)
	}
}

func TestLoadUsersErrors(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"unknown key":    {"- subject: carol\n  email_verfied: true\n", "email_verfied"},
		"no subject":     {"- email: carol@example.com\n", "no subject"},
		"duplicate":      {"- subject: a\n- subject: a\n", "twice"},
		"empty":          {"", "empty"},
		"not a list":     {"subject: carol\n", "cannot unmarshal"},
		"bad type":       {"- subject: carol\n  groups: admins\n", "cannot unmarshal"},
		"empty list":     {"[]\n", "empty list"},
		"unknown nested": {"- subject: carol\n  extra: {a: 1}\n  passwd: x\n", "passwd"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			_, err := loadUsers(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to name %s and say %q", err, path, tc.want)
			}
		})
	}
	if _, err := loadUsers(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestServeWritesIssuerFile(t *testing.T) {
	issuerFile := filepath.Join(t.TempDir(), "issuer")
	cfg, err := parseFlags([]string{"--addr", "127.0.0.1:0", "--auto-approve", "alice@example.com",
		"--issuer-file", issuerFile, "--quiet"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, &stdout, io.Discard) }()

	var issuer string
	for deadline := time.Now().Add(5 * time.Second); issuer == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("issuer file not written")
		}
		b, _ := os.ReadFile(issuerFile)
		issuer = strings.TrimSpace(string(b))
	}
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("discovery: %s", resp.Status)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := os.Stat(issuerFile); !os.IsNotExist(err) {
		t.Errorf("issuer file left behind: %v", err)
	}
	if out := stdout.String(); !strings.Contains(out, issuer) || !strings.Contains(out, "alice@example.com") {
		t.Errorf("banner:\n%s", out)
	}
}

func TestQuirkFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--alg", "ES384", "--issuer-path", "/realms/x/", "--no-kid", "--foreign-jwks",
		"--clock-offset", "2m", "--jwks-cache-control", "no-store", "--azp", "other", "--aud", "third",
		"--nbf", "10m", "--schemeless-iss", "--tenant", "t1=contoso.onmicrosoft.com,fabrikam.com", "--tenant", "t2",
		"--device-drops-nonce"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.quirks
	if cfg.alg != "ES384" || q.IssuerPath != "/realms/x/" || !q.NoKID || !q.ForeignJWKs || q.ClockOffset != 2*time.Minute ||
		q.JWKSCacheControl != "no-store" || q.AZP != "other" || len(q.ExtraAudiences) != 1 || q.NotBefore != 10*time.Minute ||
		!q.SchemelessIss || !q.DeviceDropsNonce || len(q.Tenants) != 2 || len(q.Tenants[0].Domains) != 2 || q.Tenants[1].ID != "t2" {
		t.Fatalf("parsed %+v", cfg)
	}
	// Tenants have their own issuers: an issuer path besides them is refused when the OP starts.
	var stderr bytes.Buffer
	if code := run([]string{"--addr", "127.0.0.1:0", "--issuer-path", "/x", "--tenant", "t1"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "exclude") {
		t.Errorf("issuer path with tenants: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--addr", "127.0.0.1:0", "--alg", "HS256"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "unsupported Alg") {
		t.Errorf("--alg HS256: exit %d, stderr %q", code, stderr.String())
	}
}

func TestFlagErrors(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--auto-approve", "nobody", "--addr", "127.0.0.1:0"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "no such user") {
		t.Errorf("unknown auto-approve user: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--addr", "0.0.0.0:8888"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("non-loopback: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--help"}, io.Discard, &stderr); code != 0 || !strings.Contains(stderr.String(), "Examples:") {
		t.Errorf("--help: exit %d", code)
	}
	if code := run([]string{"extra"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("extra argument: exit %d", code)
	}
}
