package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// startOP starts the test OP in form mode; the scripted browser logs in as FAKEBROWSER_USER.
func startOP(t *testing.T) *testop.Server {
	t.Helper()
	op, err := testop.Start(testop.Options{Users: []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admins"}, AMR: []string{"pwd", "mfa"}},
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true},
		// Some OPs send a single group as a plain string.
		{Subject: "carol", Email: "carol@example.com", EmailVerified: true, Extra: map[string]any{"groups": "ops"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op
}

type result struct {
	stdout, stderr string
	code           int
}

// opkssh runs the built binary with a clean environment plus env.
func opkssh(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, opksshBin, args...)
	cmd.Env = append([]string{"PATH=" + browserDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running opkssh %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// login runs `opkssh login` through the scripted browser as user and returns the key path.
func login(t *testing.T, op *testop.Server, user, keyType, keyPath string) string {
	t.Helper()
	return loginWith(t, op, user, keyPath, "--key-type", keyType)
}

// certArgs returns sshd's %k and %t for the certificate next to keyPath.
func certArgs(t *testing.T, keyPath string) (b64, typ string) {
	t.Helper()
	data, err := os.ReadFile(sshcert.CertPath(keyPath))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		t.Fatalf("certificate file %s: %q", keyPath, data)
	}
	return f[1], f[0]
}

func policy(issuer, rules string) string {
	return "# written by the e2e test\nversion: 1\nproviders:\n  test:\n    issuer: " + issuer +
		"\n    client_ids: [opkssh]\n    expiration: 24h\n" + rules
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
