package sshcert

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name              string
		iat               time.Time
		wantAfter, wantBe time.Time
	}{
		// The OP's clock runs 5 minutes ahead: the certificate must be valid now all the same.
		{"OP ahead", now.Add(5 * time.Minute), now.Add(-Backdate), now.Add(24 * time.Hour)},
		{"OP ahead by an hour", now.Add(time.Hour), now.Add(-Backdate), now.Add(24 * time.Hour)},
		// The OP's clock is behind: the window follows iat, so it ends where a server's
		// "24h from iat" policy ends.
		{"OP behind", now.Add(-3 * time.Minute), now.Add(-3*time.Minute - Backdate), now.Add(24*time.Hour - 3*time.Minute)},
		{"clocks agree", now, now.Add(-Backdate), now.Add(24 * time.Hour)},
		{"no iat", time.Time{}, now.Add(-Backdate), now.Add(24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after, before := Window(now, tc.iat, 24*time.Hour)
			if !after.Equal(tc.wantAfter) || !before.Equal(tc.wantBe) {
				t.Fatalf("Window = %s .. %s, want %s .. %s", after, before, tc.wantAfter, tc.wantBe)
			}
			if now.Before(after) || !now.Before(before) {
				t.Fatalf("certificate made now is not valid now: %s .. %s", after, before)
			}
		})
	}
}
