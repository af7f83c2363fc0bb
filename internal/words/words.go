// Package words holds the small wording helpers that keep opkssh's messages consistent ("1 rule",
// "2 rules") across the commands and the features that print to people.
package words

import "strconv"

// Count returns "1 one" or "N many" (including "0 many").
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
