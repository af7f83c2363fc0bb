package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseIdentityArg(t *testing.T) {
	good := []struct {
		arg  string
		want Identity
	}{
		{"alice@example.com", Identity{Kind: KindEmail, Value: "alice@example.com"}},
		{"email:alice@example.com", Identity{Kind: KindEmail, Value: "alice@example.com"}},
		{"email:a:b@example.com", Identity{Kind: KindEmail, Value: "a:b@example.com"}},
		{"domain:example.com", Identity{Kind: KindEmailDomain, Value: "example.com"}},
		{"sub:248289761001", Identity{Kind: KindSub, Value: "248289761001"}},
		{"sub:a:b@c", Identity{Kind: KindSub, Value: "a:b@c"}},
		{"group:ssh-admins", Identity{Kind: KindGroup, Value: "ssh-admins"}},
		{"claim:realm_access.roles=admin", Identity{Kind: KindClaim, ClaimName: "realm_access.roles", Value: "admin"}},
		{"claim:job_workflow_ref=org/repo/.github/workflows/d.yml@refs/heads/main", Identity{Kind: KindClaim, ClaimName: "job_workflow_ref", Value: "org/repo/.github/workflows/d.yml@refs/heads/main"}},
		{"claim:a=b=c", Identity{Kind: KindClaim, ClaimName: "a", Value: "b=c"}},
	}
	for _, tt := range good {
		got, err := ParseIdentityArg(tt.arg)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, %v", tt.arg, got, err)
			continue
		}
		if back, err := ParseIdentityArg(got.String()); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("%q: String() %q does not parse back: %+v %v", tt.arg, got.String(), back, err)
		}
	}
	bad := []struct{ arg, want string }{
		{"", "is not understood; write one of: alice@example.com"},
		{"alice", "is not understood"},
		{"oidc:groups:admin", "is not understood"},
		{"a:b@example.com", "is not understood"},
		{"Email:alice@example.com", "is not understood"},
		{"email:", "value is empty"},
		{"email:alice", "is not an email address"},
		{"@example.com", "is not an email address"},
		{"alice@", "is not an email address"},
		{"domain:", "value is empty"},
		{"domain:com", "has no dot"},
		{"domain:.example.com", "starts with a dot"},
		{"domain:@example.com", "bare domain"},
		{"domain:*.example.com", "bare domain"},
		{"sub:", "value is empty"},
		{"group:", "value is empty"},
		{"claim:roles", "claim:NAME=VALUE"},
		{"claim:=admin", "claim name is empty"},
		{"claim:roles=", "value is empty"},
		{"claim:iss=https://a", `claim "iss" does not identify a person`},
		{"claim:a..b=x", "empty segment"},
		{"sub: x", "leading or trailing spaces"},
		{"sub:x\n", "control character"},
		{"group:a\x00b", "control character"},
		{"sub:\xff", "invalid UTF-8"},
	}
	for _, tt := range bad {
		_, err := ParseIdentityArg(tt.arg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.arg, err, tt.want)
		}
	}
}
