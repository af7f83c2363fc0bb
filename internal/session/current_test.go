package session

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// writeLogin writes an opkssh key pair of type typ at keyPath, from op, valid until end, and
// notes it in the record as Login.Save does.
func writeLogin(t *testing.T, op *testop.Server, keyPath string, typ KeyType, end time.Time) {
	t.Helper()
	signer, alg := logintest.NewKey(string(typ))
	iat := time.Now().Add(-time.Hour)
	compact, err := logintest.Forge(op, signer, alg, logintest.Claims(op, "alice", "alice@example.com", iat))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := logintest.Wrap(signer, compact, iat, end)
	if err != nil {
		t.Fatal(err)
	}
	l := &Login{Identity: "alice@example.com", Issuer: op.Issuer(), Key: signer, Cert: cred.Cert, ValidBefore: end}
	if err := l.Save(keyPath); err != nil {
		t.Fatal(err)
	}
}

func TestRecord(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	op := startOP(t, 0)
	k, _ := UserKeys()
	if got, err := k.Recorded(); got != nil || err != nil {
		t.Fatalf("no record yet: %v, %v", got, err)
	}
	elsewhere := filepath.Join(home, "keys", "id_work")
	writeLogin(t, op, elsewhere, Ed25519, time.Now().Add(time.Hour))
	writeLogin(t, op, k.KeyPath(ECDSA), ECDSA, time.Now().Add(time.Hour))
	fi, err := os.Stat(k.RecordPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record: %v %v", fi, err)
	}
	got, err := k.Recorded()
	if err != nil || len(got) != 2 || got[0].Key != k.KeyPath(ECDSA) || got[1].Key != elsewhere || got[1].Type != Ed25519 || got[1].Issuer != op.Issuer() {
		t.Fatalf("Recorded = %+v, %v; want the latest first", got, err)
	}
	paths, err := KeyPaths("")
	if err != nil || strings.Join(paths, " ") != k.KeyPath(ECDSA)+" "+k.KeyPath(Ed25519)+" "+elsewhere {
		t.Fatalf("KeyPaths = %v, %v; want the defaults, then the recorded one", paths, err)
	}

	// A key whose files are gone drops out at the next change; Forget removes the rest.
	os.Remove(elsewhere)
	os.Remove(sshcert.CertPath(elsewhere))
	writeLogin(t, op, k.KeyPath(ECDSA), ECDSA, time.Now().Add(time.Hour))
	if got, _ := k.Recorded(); len(got) != 1 {
		t.Fatalf("Recorded = %+v; want the gone key dropped", got)
	}
	if err := k.Forget(k.KeyPath(ECDSA)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k.RecordPath()); !os.IsNotExist(err) {
		t.Fatalf("an empty record stays: %v", err)
	}

	// A broken record is an error that names it; the next login replaces it.
	os.WriteFile(k.RecordPath(), []byte("{"), 0o600)
	if _, err := k.Recorded(); err == nil || !strings.Contains(err.Error(), RecordName) {
		t.Fatalf("broken record: %v", err)
	}
	writeLogin(t, op, elsewhere, ECDSA, time.Now().Add(time.Hour))
	if got, err := k.Recorded(); err != nil || len(got) != 1 || got[0].Key != elsewhere {
		t.Fatalf("after a login: %+v, %v", got, err)
	}
	// A record of another version, or with relative paths, is ignored.
	os.WriteFile(k.RecordPath(), []byte(`{"version": 2, "logins": [{"key": "/x"}]}`), 0o600)
	if got, err := k.Recorded(); got != nil || err != nil {
		t.Fatalf("version 2: %+v, %v", got, err)
	}
	os.WriteFile(k.RecordPath(), []byte(`{"version": 1, "logins": [{"key": "x"}]}`), 0o600)
	if got, err := k.Recorded(); got != nil || err != nil {
		t.Fatalf("relative path: %+v, %v", got, err)
	}
}

func TestFindCurrent(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	op := startOP(t, 0)
	k, _ := UserKeys()
	now := time.Now()
	find := func(q Query) Current {
		t.Helper()
		q.Now, q.MinRemaining = now, 5*time.Minute
		cur, err := FindCurrent(q)
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}

	// Nothing at all: a new login goes to the default file of its type.
	cur := find(Query{})
	if cur.State != certstatus.Missing || cur.Target != k.KeyPath(ECDSA) || cur.TargetType != ECDSA || len(cur.Looked) != 2 {
		t.Fatalf("nothing: %+v", cur)
	}
	if cur := find(Query{KeyType: Ed25519}); cur.Target != k.KeyPath(Ed25519) || cur.TargetType != Ed25519 {
		t.Fatalf("nothing, ed25519: %+v", cur)
	}

	// An ed25519 login counts without --key-type, and its renewal stays ed25519.
	writeLogin(t, op, k.KeyPath(Ed25519), Ed25519, now.Add(time.Hour))
	cur = find(Query{})
	if cur.State != certstatus.Valid || cur.Key != k.KeyPath(Ed25519) || cur.Target != k.KeyPath(Ed25519) || cur.TargetType != Ed25519 {
		t.Fatalf("ed25519 login: %+v", cur)
	}
	// --key-type ecdsa asks for another login.
	if cur := find(Query{KeyType: ECDSA}); cur.State != certstatus.Missing || cur.Target != k.KeyPath(ECDSA) {
		t.Fatalf("ecdsa only: %+v", cur)
	}
	// Another OP's login does not count.
	if cur := find(Query{Issuer: "https://other.example.com"}); cur.State != certstatus.Missing {
		t.Fatalf("other OP: %+v", cur)
	}

	// A login elsewhere (--key-file) that lasts longer is the current one; expired, it is still
	// where the renewal goes when nothing better is there.
	os.Remove(k.KeyPath(Ed25519))
	os.Remove(sshcert.CertPath(k.KeyPath(Ed25519)))
	work := filepath.Join(home, ".ssh", "id_opkssh")
	writeLogin(t, op, work, ECDSA, now.Add(-time.Minute))
	cur = find(Query{})
	if cur.State != certstatus.Expired || cur.Target != work || cur.TargetType != ECDSA {
		t.Fatalf("expired login elsewhere: %+v", cur)
	}
	if cur := find(Query{KeyFile: "/nowhere/key"}); cur.State != certstatus.Missing || cur.Target != "/nowhere/key" || len(cur.Looked) != 1 {
		t.Fatalf("named key: %+v", cur)
	}

	// An --agent-only login is found in the agent; its renewal stays there.
	signer, alg := logintest.NewKey("ecdsa")
	compact, err := logintest.Forge(op, signer, alg, logintest.Claims(op, "alice", "alice@example.com", now))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := logintest.Wrap(signer, compact, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ids := []sshagent.Identity{{Comment: "opkssh:alice@example.com", Cert: cred.Cert}}
	cur = find(Query{Agent: ids, AgentName: "the agent"})
	if cur.State != certstatus.Valid || !cur.InAgent || cur.Key != "" || cur.Path != "the agent" {
		t.Fatalf("agent login: %+v", cur)
	}
	if cur.Target != work {
		t.Fatalf("with a file login too, its renewal goes to the file: %+v", cur)
	}
	os.Remove(work)
	os.Remove(sshcert.CertPath(work))
	if cur := find(Query{Agent: ids, AgentName: "the agent"}); !cur.InAgent || cur.Target != "" {
		t.Fatalf("agent-only login: %+v", cur)
	}
	// A named key file leaves the agent out.
	if cur := find(Query{KeyFile: work, Agent: ids, AgentName: "the agent"}); cur.InAgent || cur.State != certstatus.Missing {
		t.Fatalf("named key with an agent: %+v", cur)
	}
}
