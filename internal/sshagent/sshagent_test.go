package sshagent_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/opkssh-team/opkssh/internal/sshagent"
)

// recorder is an in-memory agent that remembers what it was asked to add.
type recorder struct {
	agent.Agent
	added []agent.AddedKey
}

func (r *recorder) Add(k agent.AddedKey) error {
	r.added = append(r.added, k)
	return r.Agent.Add(k)
}

func selfSigned(t *testing.T, key ssh.Signer) *ssh.Certificate {
	t.Helper()
	cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, ValidPrincipals: []string{"x"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, key); err != nil {
		t.Fatal(err)
	}
	return cert
}

func newCert(t *testing.T) (*ecdsa.PrivateKey, *ssh.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, selfSigned(t, s)
}

func comments(t *testing.T, a agent.Agent) []string {
	t.Helper()
	keys, err := a.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, k.Comment)
	}
	return out
}

func TestAddReplacesEarlierOpksshIdentities(t *testing.T) {
	a := &recorder{Agent: agent.NewKeyring()}
	_, foreign, _ := ed25519.GenerateKey(rand.Reader)
	if err := a.Agent.Add(agent.AddedKey{PrivateKey: foreign, Comment: "me@laptop"}); err != nil {
		t.Fatal(err)
	}
	k1, c1 := newCert(t)
	removed, err := sshagent.Add(a, k1, c1, "opkssh:alice@example.com", 90*time.Minute+500*time.Millisecond)
	if err != nil || len(removed) != 0 {
		t.Fatalf("first Add: removed %v, err %v", removed, err)
	}
	if got := a.added[0].LifetimeSecs; got != 5400 {
		t.Errorf("LifetimeSecs = %d, want 5400 (the remaining validity, rounded down)", got)
	}
	k2, c2 := newCert(t)
	removed, err = sshagent.Add(a, k2, c2, "opkssh:bob@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Comment != "opkssh:alice@example.com" || removed[0].Fingerprint != ssh.FingerprintSHA256(c1.Key) {
		t.Fatalf("removed %+v, want alice's identity", removed)
	}
	if got := strings.Join(comments(t, a), ","); got != "me@laptop,opkssh:bob@example.com" {
		t.Fatalf("agent holds %s", got)
	}
	ids, err := sshagent.List(a)
	if err != nil || len(ids) != 1 || ids[0].Cert == nil || ids[0].Fingerprint != ssh.FingerprintSHA256(c2.Key) {
		t.Fatalf("List = %+v, %v", ids, err)
	}
	if held, err := sshagent.Holds(a, c2); err != nil || !held {
		t.Fatalf("Holds(new) = %v, %v", held, err)
	}
	if held, err := sshagent.Holds(a, c1); err != nil || held {
		t.Fatalf("Holds(old) = %v, %v", held, err)
	}

	// Remove takes out every opkssh identity, plain keys loaded with ssh-add included.
	_, plain, _ := ed25519.GenerateKey(rand.Reader)
	if err := a.Agent.Add(agent.AddedKey{PrivateKey: plain, Comment: "opkssh:carol"}); err != nil {
		t.Fatal(err)
	}
	removed, err = sshagent.Remove(a, nil)
	if err != nil || len(removed) != 2 {
		t.Fatalf("Remove: %+v, %v", removed, err)
	}
	if got := strings.Join(comments(t, a), ","); got != "me@laptop" {
		t.Fatalf("after Remove the agent holds %s", got)
	}
}

func TestAddRefuses(t *testing.T) {
	a := agent.NewKeyring()
	k, c := newCert(t)
	if _, err := sshagent.Add(a, k, c, "opkssh:alice", 500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("less than a second left: err = %v", err)
	}
	if _, err := sshagent.Add(a, k, c, "alice", time.Hour); err == nil {
		t.Error("a comment without the opkssh: prefix was accepted")
	}
	if err := a.Lock([]byte("pw")); err != nil {
		t.Fatal(err)
	}
	if _, err := sshagent.Add(a, k, c, "opkssh:alice", time.Hour); err == nil || !strings.Contains(err.Error(), "ssh-add -X") {
		t.Errorf("locked agent: err = %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	if _, err := sshagent.Dial(""); !errors.Is(err, sshagent.ErrNoSocket) {
		t.Errorf("Dial(\"\") = %v, want ErrNoSocket", err)
	}
	sock := filepath.Join(t.TempDir(), "no-agent.sock")
	_, err := sshagent.Dial(sock)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the ssh-agent at "+sock) {
		t.Errorf("Dial(missing) = %v", err)
	}
}
