package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/internal/qrterm"
	"github.com/opkssh-team/opkssh/internal/testop"
)

// deviceLoginStatus runs a device login that alice approves and returns what it printed.
func deviceLoginStatus(t *testing.T, op *testop.Server, qrWidth int) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	status := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		_, err := DeviceLogin(ctx, Config{Issuer: op.Issuer(), ClientID: "opkssh"}, LoginOptions{Signer: key, Alg: "ES256", Status: status, QRWidth: qrWidth})
		done <- err
	}()
	codes := op.PendingUserCodes()
	for ; len(codes) == 0 && ctx.Err() == nil; codes = op.PendingUserCodes() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(codes) != 1 {
		t.Fatalf("%d pending device logins", len(codes))
	}
	if err := op.ApproveDevice(codes[0], "alice"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return status.String()
}

func TestDeviceLoginQR(t *testing.T) {
	op := aliceOP(t)
	op.SetDeviceInterval(10 * time.Millisecond)

	out := deviceLoginStatus(t, op, 200)
	i := strings.Index(out, "or scan this with a phone:\n")
	if i < 0 {
		t.Fatalf("no QR code on a wide terminal:\n%s", out)
	}
	// The code is of the URL that fills in the user code.
	var complete string
	for _, l := range strings.Split(out, "\n") {
		if u, ok := strings.CutPrefix(l, "(or open "); ok {
			complete, _, _ = strings.Cut(u, ",")
		}
	}
	want, err := qrterm.Render(complete)
	if complete == "" || err != nil {
		t.Fatalf("no verification_uri_complete in the output (%v):\n%s", err, out)
	}
	if !strings.Contains(out[i:], want.String()) {
		t.Errorf("the QR code shown is not the one of %s:\n%s", complete, out)
	}

	// One column too few for the code and its quiet zone: no code, nor the line introducing it.
	if out := deviceLoginStatus(t, op, want.Width-1); strings.Contains(out, "scan") || strings.ContainsRune(out, '▀') {
		t.Errorf("a QR code on a terminal %d columns wide:\n%s", want.Width-1, out)
	}
	if out := deviceLoginStatus(t, op, 0); strings.Contains(out, "scan") {
		t.Errorf("a QR code without a terminal:\n%s", out)
	}
}

// An OP that drops the nonce from the device login's ID token (Dex, Zitadel) gets an error that
// names the behaviour and the logins that work instead.
func TestDeviceLoginNonceDropped(t *testing.T) {
	op, err := testop.Start(testop.Options{AutoApprove: "alice", Quirks: testop.Quirks{DeviceDropsNonce: true},
		Users: []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	op.SetDeviceInterval(10 * time.Millisecond)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = DeviceLogin(ctx, Config{Issuer: op.Issuer(), ClientID: "opkssh"}, LoginOptions{Signer: key, Alg: "ES256"})
	if !errors.Is(err, ErrDeviceNonceDropped) {
		t.Fatalf("DeviceLogin = %v, want ErrDeviceNonceDropped", err)
	}
	for _, want := range []string{"left the nonce out", "Dex and Zitadel", "opkssh login --no-browser", "paste back"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
