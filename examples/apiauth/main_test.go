package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// TestExample runs the example server on loopback and calls it as alice, with her login's key.
func TestExample(t *testing.T) {
	op, err := testop.Start(testop.Options{Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cred, err := logintest.Login(ctx, op, "alice", "ed25519")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "id_ed25519")
	block, _ := ssh.MarshalPrivateKey(cred.Signer, "opkssh:alice")
	os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600)
	os.WriteFile(sshcert.CertPath(keyPath), ssh.MarshalAuthorizedKey(cred.Cert), 0o644)
	pol := filepath.Join(dir, "api.yaml")
	os.WriteFile(pol, []byte("version: 1\nproviders:\n  test:\n    issuer: "+op.Issuer()+"\n    client_ids: [opkssh]\nsigners:\n  - provider: test\n    identities: [{email_domain: example.com}]\n"), 0o644)
	h, err := newHandler(pol)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	var out bytes.Buffer
	if err := call([]string{"--key-file", keyPath, srv.URL + "/whoami"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"email":"alice@example.com"`) {
		t.Fatalf("whoami: %s", out.String())
	}
	out.Reset()
	if err := call([]string{"--key-file", keyPath, "--data", "hello", srv.URL + "/echo"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"body":"hello"`) {
		t.Fatalf("echo: %s", out.String())
	}
}
