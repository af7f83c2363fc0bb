package idtoken

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func claimsJSON(t *testing.T, c map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckRefreshed(t *testing.T) {
	orig := map[string]any{"iss": "https://op", "sub": "alice", "aud": "opkssh", "azp": "opkssh", "iat": 1000, "auth_time": 990, "nonce": "N", "email": "a@example.com"}
	fresh := func(change map[string]any) []byte {
		c := map[string]any{"iss": "https://op", "sub": "alice", "aud": []string{"opkssh"}, "azp": "opkssh", "iat": 5000, "auth_time": 990, "email": "a@example.com"}
		for k, v := range change {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return claimsJSON(t, c)
	}
	for _, tc := range []struct {
		name    string
		fresh   []byte
		wantErr string // "" for success; "unbound" for ErrUnboundRefresh
	}{
		{"same login, later", fresh(nil), ""},
		{"same second", fresh(map[string]any{"iat": 1000}), ""},
		{"bound by the nonce alone", fresh(map[string]any{"auth_time": nil, "nonce": "N"}), ""},
		{"no email in the refreshed token", fresh(map[string]any{"email": nil}), ""},
		{"other subject", fresh(map[string]any{"sub": "mallory"}), "subject"},
		{"other issuer", fresh(map[string]any{"iss": "https://evil"}), "issuer"},
		{"other audience", fresh(map[string]any{"aud": "other"}), "audience"},
		{"wider audience", fresh(map[string]any{"aud": []string{"opkssh", "other"}}), "audience"},
		{"other azp", fresh(map[string]any{"azp": "other"}), "azp"},
		{"older", fresh(map[string]any{"iat": 999}), "before the original"},
		{"no iat", fresh(map[string]any{"iat": nil}), "iat is missing"},
		{"other email", fresh(map[string]any{"email": "b@example.com"}), "email"},
		{"other login (auth_time)", fresh(map[string]any{"auth_time": 991}), "another login"},
		{"other login (nonce)", fresh(map[string]any{"nonce": "M"}), "another login"},
		{"unbound", fresh(map[string]any{"auth_time": nil}), "unbound"},
		{"not JSON", []byte("{"), "claims"},
		{"no sub", fresh(map[string]any{"sub": nil}), "sub is missing"},
		{"sub not a string", fresh(map[string]any{"sub": 7}), "claims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRefreshed(claimsJSON(t, orig), tc.fresh)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr == "unbound" && !errors.Is(err, ErrUnboundRefresh):
				t.Fatalf("got %v, want ErrUnboundRefresh", err)
			case tc.wantErr != "" && tc.wantErr != "unbound" && (err == nil || errors.Is(err, ErrUnboundRefresh) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
	// An original without auth_time cannot be bound by a refreshed token that has one.
	noAuth := claimsJSON(t, map[string]any{"iss": "https://op", "sub": "alice", "aud": "opkssh", "iat": 1000, "nonce": "N"})
	if err := CheckRefreshed(noAuth, fresh(nil)); !errors.Is(err, ErrUnboundRefresh) {
		t.Fatalf("original without auth_time: %v", err)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"localhost.example.com": false, "10.0.0.1": false, "example.com": false, "": false, "0.0.0.0": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
