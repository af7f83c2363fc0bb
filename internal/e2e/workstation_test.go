package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestLoginOPClockAhead logs in against an OP whose clock runs five minutes ahead of this
// machine's: the certificate must be valid now, as ssh-keygen (OpenSSH's own reading) shows,
// not from the token's iat on.
func TestLoginOPClockAhead(t *testing.T) {
	op := startOP(t)
	op.SetNow(func() time.Time { return time.Now().Add(5 * time.Minute) })
	key := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id"))
	out, err := exec.Command("ssh-keygen", "-L", "-f", key+"-cert.pub").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Valid: from (\S+) to (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("ssh-keygen -L shows no validity:\n%s", out)
	}
	const layout = "2006-01-02T15:04:05"
	from, err1 := time.ParseInLocation(layout, string(m[1]), time.Local)
	to, err2 := time.ParseInLocation(layout, string(m[2]), time.Local)
	if err1 != nil || err2 != nil {
		t.Fatalf("ssh-keygen validity %q: %v %v", m[0], err1, err2)
	}
	now := time.Now()
	if now.Before(from) || !now.Before(to) {
		t.Fatalf("certificate made now is not valid now (%s): %s", now.Format(layout), m[0])
	}
	if d := to.Sub(now); d > 24*time.Hour || d < 23*time.Hour {
		t.Fatalf("certificate lasts %s from now, want just under the 24h lifetime: %s", d, m[0])
	}
}
