package serverconfig

import (
	"testing"
	"time"

	"github.com/opkssh-team/opkssh/verifier"
)

func TestParseVerify(t *testing.T) {
	v, rest, err := ParseVerify([]string{"%u", "%k", "%t"})
	if err != nil || len(rest) != 3 || v.PolicyPath != PolicyPath || v.CacheDir != CacheDir || v.StaleFor != verifier.DefaultStaleFor || v.PolicyOwner != 0 {
		t.Fatalf("defaults: %+v %v %v", v, rest, err)
	}
	v, rest, err = ParseVerify([]string{"%u", "--policy", "/p/pol.yaml", "%k", "--cache-dir=''", "--stale-for", "2h", "--policy-owner=7", "%t"})
	if err != nil || len(rest) != 3 || v.PolicyPath != "/p/pol.yaml" || v.CacheDir != "" || v.StaleFor != 2*time.Hour || v.PolicyOwner != 7 {
		t.Fatalf("flags: %+v %v %v", v, rest, err)
	}
	o := v.PolicyOptions()
	if o.DropInDir != "/p/policies.d" || len(o.TrustedUIDs) != 2 || o.TrustedUIDs[1] != 7 {
		t.Fatalf("PolicyOptions %+v", o)
	}
	if _, _, err := ParseVerify([]string{"--nope"}); err == nil {
		t.Fatal("an unknown flag was accepted")
	}
	if DropInDir(PolicyPath) != "/etc/opkssh/policies.d" {
		t.Fatalf("DropInDir = %s", DropInDir(PolicyPath))
	}
}
