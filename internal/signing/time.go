package signing

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a signature time as given on a command line: RFC 3339
// (2026-01-02T15:04:05Z), @UNIX-SECONDS, or ssh-keygen's verify-time form YYYYMMDD[HHMM[SS]],
// local time unless it ends in Z (what git passes as -Overify-time).
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if rest, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("time %q: @ must be followed by seconds since 1970", s)
		}
		return time.Unix(n, 0), nil
	}
	if loc == nil {
		loc = time.Local
	}
	digits := s
	if d, ok := strings.CutSuffix(s, "Z"); ok {
		digits, loc = d, time.UTC
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	if layout, ok := layouts[len(digits)]; ok {
		if t, err := time.ParseInLocation(layout, digits, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is neither RFC 3339, @SECONDS nor YYYYMMDD[HHMM[SS]][Z]", s)
}
