package session

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

func TestKeyTypes(t *testing.T) {
	for in, want := range map[string]KeyType{"ecdsa": ECDSA, "P256": ECDSA, "ecdsa-p256": ECDSA, "Ed25519": Ed25519} {
		got, err := ParseKeyType(in)
		if err != nil || got != want {
			t.Errorf("ParseKeyType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseKeyType("rsa"); err == nil || !strings.Contains(err.Error(), "use ecdsa (default) or ed25519") {
		t.Errorf("rsa: %v", err)
	}
	for typ, want := range map[KeyType]string{ECDSA: "ES256", Ed25519: "EdDSA"} {
		key, alg, err := NewKey(typ)
		if err != nil || key == nil || alg != want {
			t.Errorf("NewKey(%s) = %T, %q, %v", typ, key, alg, err)
		}
	}
	k := Keys{Dir: "/home/u/.ssh"}
	if got := k.KeyPaths(); len(got) != 2 || got[0] != "/home/u/.ssh/id_ecdsa" || got[1] != "/home/u/.ssh/id_ed25519" {
		t.Errorf("KeyPaths = %v", got)
	}
	if got, _ := KeyPaths("/x/key"); len(got) != 1 || got[0] != "/x/key" {
		t.Errorf("KeyPaths(keyFile) = %v", got)
	}
	if got, _ := LoginKeyPath("/x/key", Ed25519); got != "/x/key" {
		t.Errorf("LoginKeyPath(keyFile) = %v", got)
	}
}

func TestNoHome(t *testing.T) {
	t.Setenv("HOME", "")
	if _, err := KeyPaths(""); !errors.Is(err, ErrNoHome) {
		t.Fatalf("KeyPaths without a home: %v", err)
	}
	if got, err := KeyPaths("/k"); err != nil || got[0] != "/k" {
		t.Fatalf("a named key needs no home: %v %v", got, err)
	}
}

func TestFirstCert(t *testing.T) {
	k := Keys{Dir: t.TempDir()}
	if _, err := k.FirstCert(); err == nil || !strings.Contains(err.Error(), "id_ecdsa-cert.pub or id_ed25519-cert.pub") {
		t.Fatalf("no certificate: %v", err)
	}
	ed := sshcert.CertPath(k.KeyPath(Ed25519))
	os.WriteFile(ed, nil, 0o644)
	if p, err := k.FirstCert(); p != ed || err != nil {
		t.Fatalf("FirstCert = %s, %v; want %s", p, err, ed)
	}
	ec := sshcert.CertPath(k.KeyPath(ECDSA))
	os.WriteFile(ec, nil, 0o644)
	if p, _ := k.FirstCert(); p != ec {
		t.Fatalf("FirstCert = %s; want the ecdsa one first", p)
	}
}

// startOP starts a test OP for alice whose clock is skew ahead of this machine's.
func startOP(t *testing.T, skew time.Duration) *testop.Server {
	t.Helper()
	op, err := testop.Start(testop.Options{
		Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}},
		Now:   func() time.Time { return time.Now().Add(skew) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op
}

// login logs alice in at op with a fresh key of type typ.
func login(t *testing.T, op *testop.Server, typ KeyType) (provider.Config, *provider.LoginResult, *Login) {
	t.Helper()
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		t.Fatal(err)
	}
	cfg := provider.Config{Issuer: op.Issuer(), ClientID: "opkssh", RedirectURIs: []string{redirect}}.WithDefaults()
	key, alg, err := NewKey(typ)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := provider.Login(ctx, cfg, provider.LoginOptions{Signer: key, Alg: alg, OpenBrowser: func(u string) error {
		go testop.Browse(ctx, u, "alice", "")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Issue(key, res, time.Now(), time.Hour, &Restrictions{ForceCommand: "/bin/true", SourceAddress: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, res, l
}

func TestIssueSaveStatusRemove(t *testing.T) {
	t.Setenv("HOME", t.TempDir()) // Save notes the key in ~/.ssh's record
	op := startOP(t, 0)
	_, _, l := login(t, op, Ed25519)
	if l.Identity != "alice@example.com" || l.Issuer != op.Issuer() || l.Comment() != "opkssh:alice@example.com" {
		t.Fatalf("login %+v", l)
	}
	if d := time.Until(l.ValidBefore); d > time.Hour || d < 58*time.Minute {
		t.Fatalf("valid for %s, want about the 1h lifetime", d)
	}
	if got := l.Cert.CriticalOptions[sshcert.OptionForceCommand]; got != "/bin/true" {
		t.Fatalf("force-command %q", got)
	}

	dir := t.TempDir()
	keyPath := filepath.Join(dir, "ssh", "id_ed25519")
	if err := l.Save(keyPath); err != nil {
		t.Fatal(err)
	}
	st, err := Status([]string{keyPath, filepath.Join(dir, "none")}, time.Now(), 5*time.Minute)
	if err != nil || st.State != certstatus.Valid || st.Identity != "alice@example.com" || st.Path != sshcert.CertPath(keyPath) {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if _, _, _, err := ReadKeyPair(keyPath); err != nil {
		t.Fatalf("ReadKeyPair: %v", err)
	}
	if err := CheckKeyPath(keyPath); err != nil {
		t.Fatalf("opkssh's own key refused: %v", err)
	}

	// A key somebody else made is never overwritten nor removed.
	foreign := filepath.Join(dir, "id_mine")
	os.WriteFile(foreign, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600)
	if err := CheckKeyPath(foreign); err == nil || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("CheckKeyPath(foreign) = %v", err)
	}
	if err := l.Save(foreign); !errors.Is(err, sshcert.ErrForeignKey) {
		t.Fatalf("Save over a foreign key: %v", err)
	}
	r, err := Remove(foreign)
	if err != nil || r.Removed() || len(r.Left) != 1 || r.Left[0] != foreign {
		t.Fatalf("Remove(foreign) = %+v, %v", r, err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatal("the foreign key was removed")
	}

	// opkssh's own pair goes, with a refresh token beside it.
	rt, err := StoreRefreshToken(keyPath, provider.Config{Issuer: op.Issuer(), ClientID: "opkssh"}, "rt")
	if err != nil || rt != provider.RefreshTokenPath(keyPath) {
		t.Fatalf("StoreRefreshToken = %q, %v", rt, err)
	}
	r, err = Remove(keyPath)
	if err != nil || r.Key != keyPath || r.Cert != sshcert.CertPath(keyPath) || r.RefreshToken != rt || r.Identity != "alice@example.com" {
		t.Fatalf("Remove = %+v, %v", r, err)
	}
	for _, p := range []string{keyPath, sshcert.CertPath(keyPath), rt} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there", p)
		}
	}
	if r, err := Remove(keyPath); err != nil || r.Removed() || len(r.Left) != 0 {
		t.Fatalf("Remove of nothing = %+v, %v", r, err)
	}
}

func TestRenew(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	op := startOP(t, 0)
	cfg, res, l := login(t, op, ECDSA)
	keyPath := filepath.Join(t.TempDir(), "id_ecdsa")
	if err := l.Save(keyPath); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := RenewOptions{Config: cfg, Lifetime: 2 * time.Hour}
	if _, err := Renew(ctx, keyPath, o); !errors.Is(err, ErrNotRenewable) {
		t.Fatalf("Renew without a refresh token: %v", err)
	}
	if _, err := StoreRefreshToken(keyPath, cfg, res.RefreshToken); err != nil {
		t.Fatal(err)
	}
	other := o
	other.Config.Issuer = "https://other.example.com"
	if _, err := Renew(ctx, keyPath, other); !errors.Is(err, ErrNotRenewable) {
		t.Fatalf("Renew for another OP: %v", err)
	}

	r, err := Renew(ctx, keyPath, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Warning != nil || r.Identity != "alice@example.com" || r.Issuer != op.Issuer() {
		t.Fatalf("renewal %+v", r)
	}
	if d := time.Until(r.ValidBefore); d < time.Hour+50*time.Minute {
		t.Fatalf("renewed for %s, want about 2h", d)
	}
	if got := r.Cert.CriticalOptions[sshcert.OptionForceCommand]; got != "/bin/true" {
		t.Fatalf("the renewal dropped the restriction: %q", got)
	}
	key, cert, pkt, err := ReadKeyPair(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if pkt.FreshIDToken == nil || cert.ValidBefore != r.Cert.ValidBefore {
		t.Fatal("the written certificate is not the renewed one with the fresh ID token")
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(l.Key.Public()) {
		t.Fatal("the renewal changed the key")
	}
	saved, err := provider.LoadRefreshToken(provider.RefreshTokenPath(keyPath))
	if err != nil || saved.RefreshToken == res.RefreshToken {
		t.Fatalf("the rotated refresh token was not stored: %v", err)
	}

	// Restrictions given replace the certificate's.
	o.Restrictions = &Restrictions{}
	if r, err = Renew(ctx, keyPath, o); err != nil || len(r.Cert.CriticalOptions) != 0 {
		t.Fatalf("renewal without restrictions: %v %v", r, err)
	}

	// A token the OP refuses is removed, and the renewal fails.
	os.WriteFile(provider.RefreshTokenPath(keyPath), []byte(`{"issuer":"`+op.Issuer()+`","client_id":"opkssh","refresh_token":"spent"}`), 0o600)
	_, err = Renew(ctx, keyPath, o)
	var failed *RenewalError
	if !errors.As(err, &failed) {
		t.Fatalf("a refused token: %v", err)
	}
	if _, err := os.Lstat(provider.RefreshTokenPath(keyPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the refused refresh token was kept")
	}
}

func TestLock(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "ssh", "id_ecdsa")
	unlock, err := Lock(keyPath, func() { t.Error("waited for nobody") })
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	done := make(chan struct{})
	go func() {
		unlock2, err := Lock(keyPath, func() { close(waited) })
		if err == nil {
			unlock2()
		}
		close(done)
	}()
	<-waited
	unlock()
	<-done
}
