// Package argv splits and quotes command lines the way sshd does for AuthorizedKeysCommand: words
// are separated by spaces or tabs, single or double quotes group a word, and a backslash escapes a
// quote, a backslash, or (outside quotes) a space. Any other backslash is kept as it is.
package argv

import (
	"errors"
	"strings"
)

// Split splits a command line into words, as sshd's argv_split does.
func Split(s string) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || quote == 0 && s[i+1] == ' '):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				b.WriteByte(c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errors.New("a quote is not closed")
		}
		out = append(out, b.String())
	}
}

// Quote returns s as one word that Split reads back unchanged: as it is when it needs no quoting,
// otherwise in double quotes with backslashes and double quotes escaped.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
