package yamlfmt

import (
	"bytes"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestKeepBlankLines(t *testing.T) {
	for _, tt := range []struct{ name, orig, want string }{
		// yaml.v3 keeps the blank line inside a block scalar: it is not doubled.
		{"block scalar", "a: |\n  x\n\n  y\nb: 1\n", "a: |\n  x\n\n  y\nb: 1\n"},
		{"blank lines before a key", "a: 1\n\n\nb: 2\n", "a: 1\n\n\nb: 2\n"},
		{"trailing blank lines dropped", "a: 1\n\n\n", "a: 1\n"},
		{"comment spacing changed: that line gets none", "a: 1\n\nb: 2   # c\n", "a: 1\nb: 2 # c\n"},
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.orig), &doc); err != nil {
			t.Fatal(err)
		}
		out, err := Encode(&doc)
		if err != nil {
			t.Fatal(err)
		}
		if got := KeepBlankLines([]byte(tt.orig), out); string(got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	// A blank line inside a multi-line quoted scalar is a line break: putting one back where the
	// encoder wrote none would change the value, so the encoder's output is kept as it is.
	orig := []byte("a: \"x\n\n  y\"\n")
	out := []byte("a: \"x\n  y\"\n")
	if got := KeepBlankLines(orig, out); !bytes.Equal(got, out) {
		t.Errorf("quoted scalar: got %q, want the encoder's %q", got, out)
	}
}

func FuzzKeepBlankLines(f *testing.F) {
	f.Add([]byte("version: 1\n\nproviders:\n  corp:\n    issuer: https://sso.example.com # the SSO\n\nrules:\n  - principals: [root]\n\n  - principals: [deploy]\n"))
	f.Add([]byte("a: |\n  x\n\n  y\nb: 1\n"))
	f.Add([]byte("a: \"x\n\n  y\"\n\nb: >\n  p\n\n  q\n"))
	f.Add([]byte("- a\n\n- b\n\n# c\n\n- d\n"))
	f.Fuzz(func(t *testing.T, orig []byte) {
		var doc yaml.Node
		if yaml.Unmarshal(orig, &doc) != nil || len(doc.Content) == 0 {
			return
		}
		out, err := Encode(&doc)
		if err != nil {
			return
		}
		got := KeepBlankLines(orig, out)
		var want, have any
		if yaml.Unmarshal(out, &want) != nil {
			return
		}
		if err := yaml.Unmarshal(got, &have); err != nil || !reflect.DeepEqual(want, have) {
			t.Fatalf("keeping blank lines changed the data (err %v):\n%q\n->\n%q", err, out, got)
		}
		// Only blank lines are ever added: without them, the text is the encoder's, line for line.
		if !bytes.Equal(withoutBlankLines(got), withoutBlankLines(out)) {
			t.Fatalf("more than blank lines changed: %q -> %q", out, got)
		}
	})
}

func withoutBlankLines(b []byte) []byte {
	var res []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			res = append(res, line...)
		}
	}
	return res
}
