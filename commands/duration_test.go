package commands

import (
	"testing"
	"time"
)

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:                    "24h",
		24*time.Hour - 20*time.Second:     "24h",
		90 * time.Minute:                  "1h30m",
		5*time.Minute + 10*time.Second:    "5m",
		45*time.Second + time.Millisecond: "45s",
		0:                                 "0s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
