package trustfile

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func nobody(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: ownership cases must run")
		}
		t.Skip("changing owners needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return uid
}

// tree makes DIR/conf/keys.json (0755 directories, a 0644 file) and returns DIR/conf and the file.
func tree(t *testing.T) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(file, []byte(`{"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func rules() Rules { return Rules{TrustedUIDs: []int{os.Geteuid()}, What: "jwks_file"} }

func TestReadGood(t *testing.T) {
	_, file := tree(t)
	data, err := Read(file, 1<<10, rules())
	if err != nil || string(data) != `{"keys":[]}` {
		t.Fatalf("Read: %q, %v", data, err)
	}
	// A link placed by a trusted user inside trusted directories is fine.
	link := filepath.Join(filepath.Dir(file), "current.json")
	os.Symlink("keys.json", link)
	if _, err := Read(link, 1<<10, rules()); err != nil {
		t.Fatalf("Read through a trusted link: %v", err)
	}
}

func TestReadRefuses(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, dir, file string) string // returns the path to read
		want  string
	}{
		{"file writable by others", func(t *testing.T, dir, file string) string { os.Chmod(file, 0o646); return file }, "writable by group or others"},
		{"file writable by group", func(t *testing.T, dir, file string) string { os.Chmod(file, 0o664); return file }, "writable by group or others"},
		{"directory writable by others", func(t *testing.T, dir, file string) string { os.Chmod(dir, 0o777); return file }, "writable by group or others"},
		{"directory writable by group", func(t *testing.T, dir, file string) string { os.Chmod(dir, 0o775); return file }, "writable by group or others"},
		{"sticky directory not owned by root", func(t *testing.T, dir, file string) string {
			os.Chmod(dir, 0o777|os.ModeSticky)
			os.Chown(dir, nobody(t), -1)
			return file
		}, "owned by uid"},
		{"file owned by another user", func(t *testing.T, dir, file string) string { os.Chown(file, nobody(t), -1); return file }, "owned by uid"},
		{"directory owned by another user", func(t *testing.T, dir, file string) string { os.Chown(dir, nobody(t), -1); return file }, "owned by uid"},
		{"link into an untrusted directory", func(t *testing.T, dir, file string) string {
			bad := filepath.Join(filepath.Dir(dir), "open")
			os.Mkdir(bad, 0o777)
			os.Chmod(bad, 0o777)
			os.WriteFile(filepath.Join(bad, "k.json"), []byte("{}"), 0o644)
			link := filepath.Join(dir, "link.json")
			os.Symlink(filepath.Join(bad, "k.json"), link)
			return link
		}, "writable by group or others"},
		{"named pipe", func(t *testing.T, dir, file string) string {
			p := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip(err)
			}
			return p
		}, "not a regular file"},
		{"directory instead of a file", func(t *testing.T, dir, file string) string { return dir }, "not a regular file"},
		{"relative path", func(t *testing.T, dir, file string) string { return "conf/keys.json" }, "not an absolute path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, file := tree(t)
			path := tc.setup(t, dir, file)
			done := make(chan error, 1)
			go func() { _, err := Read(path, 1<<10, rules()); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want ErrUnsafe mentioning %q", err, tc.want)
				}
				if !strings.Contains(err.Error(), "jwks_file") {
					t.Fatalf("error does not name the setting: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Read hung")
			}
		})
	}
}

func TestReadTooLargeAndMissing(t *testing.T) {
	_, file := tree(t)
	if _, err := Read(file, 4, rules()); err == nil || errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("too large: %v", err)
	}
	if _, err := Read(file+".missing", 1<<10, rules()); err == nil || errors.Is(err, ErrUnsafe) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}

// Root alone is trusted by default: a file the verify user owns is not enough.
func TestReadDefaultTrustsRootOnly(t *testing.T) {
	uid := nobody(t)
	_, file := tree(t)
	os.Chown(file, uid, -1)
	if _, err := Read(file, 1<<10, Rules{}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("file owned by nobody with default rules: %v", err)
	}
	if _, err := Read(file, 1<<10, Rules{TrustedUIDs: []int{uid}}); err != nil {
		t.Fatalf("file owned by a named owner: %v", err)
	}
}

func TestCheckDir(t *testing.T) {
	dir, _ := tree(t)
	if err := CheckDir(dir, rules()); err != nil {
		t.Fatalf("good directory: %v", err)
	}
	if err := CheckDir("/", rules()); err != nil {
		t.Fatalf("/: %v", err)
	}
	if _, err := Read("/", 10, rules()); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("reading / as a file: %v", err)
	}
	inner := filepath.Join(dir, "inner")
	os.Mkdir(inner, 0o755)
	os.Chmod(dir, 0o757)
	if err := CheckDir(inner, rules()); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), dir+" is writable") {
		t.Fatalf("directory below a world-writable one: %v", err)
	}
}
