package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// leftovers lists the files in dir other than the named ones.
func leftovers(t *testing.T, dir string, want ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range entries {
		keep := false
		for _, w := range want {
			keep = keep || e.Name() == w
		}
		if !keep {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := Write(path, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(data) != "two" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("content %q mode %#o", data, fi.Mode().Perm())
	}
	if extra := leftovers(t, dir, "f"); len(extra) != 0 {
		t.Fatalf("left behind: %v", extra)
	}
}

func TestWriteLike(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("old"), 0o644)
	os.Chmod(path, 0o604)
	old, _ := os.Stat(path)
	if err := WriteWith(path, []byte("new"), Options{Mode: 0o600, Like: old}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o604 {
		t.Fatalf("mode %#o, want the replaced file's 0604", fi.Mode().Perm())
	}
}

func TestWriteNoReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteWith(path, []byte("first"), Options{Mode: 0o644, NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	err := WriteWith(path, []byte("second"), Options{Mode: 0o644, NoReplace: true})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want ErrExist", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "first" {
		t.Fatalf("the existing file was replaced: %q", data)
	}
	if extra := leftovers(t, dir, "f"); len(extra) != 0 {
		t.Fatalf("left behind: %v", extra)
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// Renaming a file over a directory fails after the temporary file was written.
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o644)
	if err := Write(filepath.Join(dir, "d"), []byte("x"), 0o644); err == nil {
		t.Fatal("writing over a non-empty directory succeeded")
	}
	if extra := leftovers(t, dir, "d"); len(extra) != 0 {
		t.Fatalf("left behind: %v", extra)
	}
}
