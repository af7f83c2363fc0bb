package testop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// postForm posts form to the OP and decodes the JSON answer.
func postForm(t *testing.T, op *Server, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(op.URL()+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, body
}

func deviceAuth(t *testing.T, op *Server, nonce string) map[string]any {
	t.Helper()
	code, body := postForm(t, op, "/device_authorization", url.Values{"client_id": {"opkssh"}, "scope": {"openid email"}, "nonce": {nonce}})
	if code != http.StatusOK {
		t.Fatalf("device authorization: %d %v", code, body)
	}
	return body
}

func pollDevice(t *testing.T, op *Server, deviceCode string) (int, map[string]any) {
	t.Helper()
	return postForm(t, op, "/token", url.Values{"client_id": {"opkssh"}, "grant_type": {GrantTypeDeviceCode}, "device_code": {deviceCode}})
}

func TestDeviceFlow(t *testing.T) {
	op := startOP(t, Options{})
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, op.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Endpoint().DeviceAuthURL; got != op.Issuer()+"/device_authorization" {
		t.Fatalf("discovery: device_authorization_endpoint %q", got)
	}

	da := deviceAuth(t, op, "the-nonce")
	userCode, _ := da["user_code"].(string)
	if len(userCode) != 9 || userCode[4] != '-' || da["verification_uri"] != op.Issuer()+"/device" ||
		da["verification_uri_complete"] != op.Issuer()+"/device?user_code="+userCode || da["interval"] != 1.0 {
		t.Fatalf("device authorization response %v", da)
	}
	if got := op.PendingUserCodes(); len(got) != 1 || got[0] != userCode {
		t.Fatalf("PendingUserCodes = %v", got)
	}
	deviceCode := da["device_code"].(string)
	if code, body := pollDevice(t, op, deviceCode); code != 400 || body["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v", code, body)
	}
	if err := op.ApproveDevice(strings.ToLower(strings.ReplaceAll(userCode, "-", "")), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := op.ApproveDevice(userCode, "alice"); err == nil {
		t.Fatal("approving twice worked")
	}
	time.Sleep(time.Second) // the interval
	code, body := pollDevice(t, op, deviceCode)
	if code != 200 {
		t.Fatalf("poll after approval: %d %v", code, body)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "opkssh"}).Verify(ctx, body["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != "the-nonce" || idt.Subject != "alice" {
		t.Fatalf("ID token: nonce %q sub %q", idt.Nonce, idt.Subject)
	}
	if code, body := pollDevice(t, op, deviceCode); code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("device code reused: %d %v", code, body)
	}
}

func TestDeviceFlowErrors(t *testing.T) {
	op := startOP(t, Options{})
	fast := deviceAuth(t, op, "n")["device_code"].(string)
	pollDevice(t, op, fast)
	if code, body := pollDevice(t, op, fast); code != 400 || body["error"] != "slow_down" {
		t.Fatalf("immediate second poll: %d %v", code, body)
	}

	denied := deviceAuth(t, op, "n")
	if err := op.DenyDevice(denied["user_code"].(string)); err != nil {
		t.Fatal(err)
	}
	if code, body := pollDevice(t, op, denied["device_code"].(string)); code != 400 || body["error"] != "access_denied" {
		t.Fatalf("denied: %d %v", code, body)
	}

	expired := deviceAuth(t, op, "n")
	op.SetNow(func() time.Time { return time.Now().Add(11 * time.Minute) })
	if code, body := pollDevice(t, op, expired["device_code"].(string)); code != 400 || body["error"] != "expired_token" {
		t.Fatalf("expired: %d %v", code, body)
	}
	if err := op.ApproveDevice(expired["user_code"].(string), "alice"); err == nil {
		t.Fatal("approved an expired code")
	}
	op.SetNow(nil)

	if code, body := pollDevice(t, op, "nosuch"); code != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("unknown device code: %d %v", code, body)
	}
	if code, body := postForm(t, op, "/device_authorization", url.Values{"client_id": {"nobody"}, "scope": {"openid"}}); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("unknown client: %d %v", code, body)
	}
	if code, body := postForm(t, op, "/device_authorization", url.Values{"client_id": {"opkssh"}, "scope": {"email"}}); code != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("no openid scope: %d %v", code, body)
	}

	op.SetAutoApprove("bob")
	auto := deviceAuth(t, op, "n")
	if code, body := pollDevice(t, op, auto["device_code"].(string)); code != 200 || body["id_token"] == nil {
		t.Fatalf("auto-approve: %d %v", code, body)
	}
}

func TestDevicePage(t *testing.T) {
	op := startOP(t, Options{})
	da := deviceAuth(t, op, "n")
	resp, err := http.Get(da["verification_uri_complete"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /device: %d", resp.StatusCode)
	}
	form := url.Values{"user_code": {da["user_code"].(string)}, "username": {"alice"}, "password": {"wrong"}}
	if resp, _ := http.PostForm(op.Issuer()+"/device", form); resp.StatusCode != 400 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	form.Set("password", "password")
	if resp, _ := http.PostForm(op.Issuer()+"/device", form); resp.StatusCode != 200 {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	if code, body := pollDevice(t, op, da["device_code"].(string)); code != 200 {
		t.Fatalf("poll: %d %v", code, body)
	}
}
