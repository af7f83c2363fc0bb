package argv

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"/usr/bin/sss_ssh_authorizedkeys %u", []string{"/usr/bin/sss_ssh_authorizedkeys", "%u"}},
		{`  a   "b c"  'd "e"' f\ g`, []string{"a", "b c", `d "e"`, "f g"}},
		{`x "a \"q\" \\ z"`, []string{"x", `a "q" \ z`}},
		{`x a\b`, []string{"x", `a\b`}},
		{"", nil},
	} {
		got, err := Split(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := Split(`a "b`); err == nil {
		t.Error("an open quote was accepted")
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", "/usr/bin/x %u %f", `a "b" \c\`, "", "it's", "tab\there"} {
		got, err := Split("cmd " + Quote(s) + " end")
		if err != nil || len(got) != 3 || got[1] != s {
			t.Errorf("Quote(%q) = %s read back as %q, %v", s, Quote(s), got, err)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(`a "b c" 'd' e\ f`)
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		for _, w := range words {
			back, err := Split(Quote(w))
			if err != nil || len(back) != 1 || back[0] != w {
				t.Fatalf("word %q quoted as %s reads back as %q, %v", w, Quote(w), back, err)
			}
		}
	})
}
