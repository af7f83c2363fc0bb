package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSnapshotDiff(t *testing.T) {
	dir := t.TempDir()
	tree, listed := filepath.Join(dir, "tree"), filepath.Join(dir, "listed")
	for _, d := range []string{tree, listed} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(tree, "config"), "a")
	write(filepath.Join(listed, "log"), "a")
	take := func() Snapshot {
		s, err := Take([]string{tree, filepath.Join(dir, "absent")}, []string{listed})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := take()
	write(filepath.Join(listed, "log"), "grown") // a listing ignores contents
	if d := before.Diff(take()); len(d) != 0 {
		t.Fatalf("no change reported as %v", d)
	}
	write(filepath.Join(tree, "config"), "b")
	os.Chmod(filepath.Join(listed, "log"), 0o600)
	write(filepath.Join(listed, "new"), "")
	write(filepath.Join(dir, "absent"), "")
	d := before.Diff(take())
	want := []string{"absent: was absent, now -rw-r--r--", "tree/config: was -rw-r--r--", "listed/log: was -rw-r--r--", "listed/new: new: -rw-r--r--"}
	if len(d) != len(want) {
		t.Fatalf("diff %q, want %d entries", d, len(want))
	}
	for _, w := range want {
		found := false
		for _, line := range d {
			found = found || strings.HasPrefix(line, filepath.Join(dir, w[:strings.Index(w, ":")])+w[strings.Index(w, ":"):])
		}
		if !found {
			t.Errorf("diff %q lacks %q", d, w)
		}
	}
}
