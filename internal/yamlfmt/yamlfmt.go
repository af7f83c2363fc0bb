// Package yamlfmt writes yaml.v3 documents the way opkssh's editors do (two-space indent) and puts
// the blank lines of the file they came from back: yaml.v3 keeps comments across a decode and
// encode, but not blank lines.
package yamlfmt

import (
	"bytes"
	"reflect"

	"gopkg.in/yaml.v3"
)

// blankLineWindow bounds how far ahead KeepBlankLines looks for a line of the original: an edit
// inserts or removes a few lines, and a bounded look-ahead keeps the walk linear in the file size.
const blankLineWindow = 64

// KeepBlankLines puts the blank lines of orig back into out, its re-encoding by yaml.v3, which keeps
// comments but drops blank lines. The two are walked side by side: an output line equal to one of
// the next original lines (trailing spaces ignored) gets the blank lines that stood before that line,
// less those already before it. Lines the edit added or changed get none. If the result does not
// decode to the same data as out (blank lines matter inside some multi-line scalars), out is
// returned unchanged: keeping the layout must never change the policy. (So does a document holding
// a value that never equals itself, such as .nan: it loses its blank lines, nothing else.)
func KeepBlankLines(orig, out []byte) []byte {
	type anchor struct {
		text   string
		blanks int
	}
	var anchors []anchor
	blanks := 0
	for _, line := range bytes.SplitAfter(orig, []byte("\n")) {
		text := string(bytes.TrimRight(line, " \t\r\n"))
		if text == "" {
			if len(line) > 0 {
				blanks++
			}
			continue
		}
		anchors = append(anchors, anchor{text, blanks})
		blanks = 0
	}

	var res bytes.Buffer
	next, before, added := 0, 0, false
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		text := string(bytes.TrimRight(line, " \t\r\n"))
		if text == "" {
			res.Write(line)
			before++
			continue
		}
		for j := next; j < len(anchors) && j < next+blankLineWindow; j++ {
			if anchors[j].text == text {
				for ; before < anchors[j].blanks; before++ {
					res.WriteByte('\n')
					added = true
				}
				next = j + 1
				break
			}
		}
		res.Write(line)
		before = 0
	}
	if !added {
		return out
	}
	var want, got any
	if yaml.Unmarshal(out, &want) != nil || yaml.Unmarshal(res.Bytes(), &got) != nil || !reflect.DeepEqual(want, got) {
		return out
	}
	return res.Bytes()
}

// Encode encodes doc with a two-space indent.
func Encode(doc *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Edit encodes doc, decoded from orig and then edited, keeping orig's blank lines.
func Edit(orig []byte, doc *yaml.Node) ([]byte, error) {
	out, err := Encode(doc)
	if err != nil {
		return nil, err
	}
	return KeepBlankLines(orig, out), nil
}
