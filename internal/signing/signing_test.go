package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/sshsig"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

type fixture struct {
	op      *testop.Server
	alice   *logintest.Credential
	keyPath string
	key     *Key
}

func startOP(t *testing.T) *testop.Server {
	t.Helper()
	op, err := testop.Start(testop.Options{Users: []testop.User{
		{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"release"}},
		{Subject: "bob", Email: "bob@example.com", EmailVerified: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op
}

// writeKey writes a credential where opkssh login would: KEY and KEY-cert.pub.
func writeKey(t *testing.T, c *logintest.Credential) string {
	t.Helper()
	keyPath := filepath.Join(t.TempDir(), "id_ecdsa")
	block, err := ssh.MarshalPrivateKey(c.Signer, "opkssh:test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sshcert.CertPath(keyPath), ssh.MarshalAuthorizedKey(c.Cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPath
}

func setup(t *testing.T, keyType string) *fixture {
	t.Helper()
	op := startOP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, err := logintest.Login(ctx, op, "alice", keyType)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := writeKey(t, alice)
	key, err := LoadKey(keyPath, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{op: op, alice: alice, keyPath: keyPath, key: key}
}

func trustOf(t *testing.T, issuer, extra string) Trust {
	t.Helper()
	pol, err := policy.Parse("signers.yaml", []byte("version: 1\nproviders:\n  test:\n    issuer: "+issuer+"\n    client_ids: [opkssh]\n    expiration: 24h\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return Trust{Policy: pol}
}

func TestSignVerify(t *testing.T) {
	f := setup(t, "ecdsa")
	ctx := context.Background()
	msg := []byte("release v1.2.3\n")
	sig, err := Sign(f.key, "file", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	trust := trustOf(t, f.op.Issuer(), "")
	res, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, trust)
	if err != nil {
		t.Fatal(err)
	}
	if res.Email != "alice@example.com" || res.Issuer != f.op.Issuer() || res.Subject != "alice" || res.Provider != "test" {
		t.Fatalf("result = %+v", res)
	}
	if _, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Now(), trust); err != nil {
		t.Fatalf("with the signing time: %v", err)
	}

	refused := func(name, reason string, sig []byte, msg []byte, ns string, at time.Time, trust Trust) {
		t.Helper()
		_, err := Verify(ctx, sig, bytes.NewReader(msg), ns, at, trust)
		if err == nil || ReasonOf(err) != reason {
			t.Errorf("%s: err = %v (reason %q), want reason %q", name, err, ReasonOf(err), reason)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	refused("tampered file", ReasonBadSignature, sig, []byte("release v1.2.4\n"), "file", time.Time{}, trust)
	refused("wrong namespace", ReasonNamespace, sig, msg, "git", time.Time{}, trust)
	refused("not a signature", ReasonMalformed, []byte("hello"), msg, "file", time.Time{}, trust)
	refused("signed after the certificate expired", verifier.ReasonSignedOutsideValidity, sig, msg, "file", time.Now().Add(48*time.Hour), trust)
	refused("another OP", verifier.ReasonUnknownIssuer, sig, msg, "file", time.Time{}, trustOf(t, "https://other.example.com", ""))

	// Another OP with the same issuer URL but its own keys (e.g. a second test OP pinned).
	other := startOP(t)
	jwksPath := filepath.Join(t.TempDir(), "jwks.json")
	fetched, err := verifier.Fetcher{}.Fetch(ctx, &policy.Provider{Issuer: other.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(jwksPath, fetched.JWKS, 0o644)
	pinned, err := ReadJWKSFiles([]string{jwksPath})
	if err != nil {
		t.Fatal(err)
	}
	otherKeys := trust
	otherKeys.Keys = pinned
	refused("OP signature by other keys", verifier.ReasonUnknownKey, sig, msg, "file", time.Time{}, otherKeys)

	// A plain key, even the very key of alice's certificate.
	plain, err := sshsig.Sign(rand.Reader, f.key.Signer, nil, "file", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	refused("plain key", ReasonPlainKey, sshsig.Armor(plain.Marshal()), msg, "file", time.Time{}, trust)

	// A key that is not the committed one: alice's certificate embedded, another key signed.
	mallory, _ := logintest.NewKey("ecdsa")
	mSigner, _ := ssh.NewSignerFromSigner(mallory)
	forged := &sshsig.Signature{PublicKey: f.key.Cert, Namespace: "file", HashAlg: sshsig.HashSHA512}
	inner, _ := sshsig.Sign(rand.Reader, mSigner, nil, "file", bytes.NewReader(msg))
	forged.Signature = inner.Signature
	refused("signed by another key", ReasonBadSignature, sshsig.Armor(forged.Marshal()), msg, "file", time.Time{}, trust)
	// A certificate of mallory's key carrying alice's PK token: the token commits to another key.
	cred, err := logintest.Wrap(mallory, f.alice.PKToken, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mk := &Key{Signer: mSigner, Cert: cred.Cert}
	msig, err := Sign(mk, "file", bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	refused("key not committed by the PK token", verifier.ReasonKeyMismatch, msig, msg, "file", time.Time{}, trust)

	// Policy: signers section and -I principal rules.
	signers := trustOf(t, f.op.Issuer(), "signers:\n  - provider: test\n    identities: [{group: release}]\n    namespaces: [file]\n")
	signers.RequireSigner = true
	if _, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, signers); err != nil {
		t.Errorf("signers: %v", err)
	}
	bobOnly := trustOf(t, f.op.Issuer(), "signers:\n  - provider: test\n    identities: [{email: bob@example.com}]\n")
	bobOnly.RequireSigner = true
	refused("not an accepted signer", ReasonNotSigner, sig, msg, "file", time.Time{}, bobOnly)
	rules := trustOf(t, f.op.Issuer(), "rules:\n  - principals: [deploy]\n    provider: test\n    identities: [{email: alice@example.com}]\n")
	rules.RequireSigner, rules.Principal = true, "deploy"
	if _, err := Verify(ctx, sig, bytes.NewReader(msg), "file", time.Time{}, rules); err != nil {
		t.Errorf("-I deploy: %v", err)
	}
	rules.Principal = "root"
	refused("-I principal without a rule", ReasonNotSigner, sig, msg, "file", time.Time{}, rules)
}

// TestSSHKeygenInterop: ssh-keygen signs with the opkssh certificate and opkssh verifies; opkssh
// signs and ssh-keygen verifies (trusting the key as its own certificate authority).
func TestSSHKeygenInterop(t *testing.T) {
	for _, kt := range []string{"ecdsa", "ed25519"} {
		t.Run(kt, func(t *testing.T) {
			f := setup(t, kt)
			dir := t.TempDir()
			msgPath := filepath.Join(dir, "msg")
			msg := []byte("interop\n")
			os.WriteFile(msgPath, msg, 0o644)
			out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "file", "-f", sshcert.CertPath(f.keyPath), msgPath).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
			}
			theirs, _ := os.ReadFile(msgPath + ".sig")
			res, err := Verify(context.Background(), theirs, bytes.NewReader(msg), "file", time.Now(), trustOf(t, f.op.Issuer(), ""))
			if err != nil {
				t.Fatalf("verifying ssh-keygen's signature: %v", err)
			}
			if res.Email != "alice@example.com" {
				t.Fatalf("identity %q", res.Email)
			}
			ours, err := Sign(f.key, "file", bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if kt == "ed25519" && !bytes.Equal(ours, theirs) {
				t.Fatalf("Ed25519 signatures differ:\nours\n%s\ntheirs\n%s", ours, theirs)
			}
			sigPath := filepath.Join(dir, "ours.sig")
			os.WriteFile(sigPath, ours, 0o644)
			allowed := filepath.Join(dir, "allowed_signers")
			os.WriteFile(allowed, []byte("opkssh-wildcard cert-authority "+string(ssh.MarshalAuthorizedKey(f.key.Signer.PublicKey()))), 0o644)
			cmd := exec.Command("ssh-keygen", "-Y", "verify", "-n", "file", "-f", allowed, "-I", "opkssh-wildcard", "-s", sigPath)
			cmd.Stdin = bytes.NewReader(msg)
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `Good "file" signature for opkssh-wildcard`) {
				t.Fatalf("ssh-keygen -Y verify: %v\n%s", err, out)
			}
		})
	}
}
