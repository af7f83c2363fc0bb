package sshcert

import (
	"encoding/base64"
	"testing"
)

// A payload of null reads as no claims, not as a nil map.
func TestDescribeTokenNullPayload(t *testing.T) {
	raw := base64.RawURLEncoding.EncodeToString([]byte("null")) + ":e30:c2ln:e30:c2ln"
	info, err := describeToken([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if info.Claims == nil || len(info.Claims) != 0 || len(info.OtherClaims()) != 0 {
		t.Fatalf("claims %v", info.Claims)
	}
}
