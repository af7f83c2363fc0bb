package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// policyDir makes a directory the current user owns and trusts, holding
// policies.yaml with src.
func policyDir(t *testing.T, src string) (LoadOptions, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policies.yaml")
	writeFile(t, path, src, 0o644)
	return LoadOptions{Path: path, DropInDir: filepath.Join(dir, "policies.d"), TrustedUIDs: []int{os.Getuid()}}, dir
}

func writeFile(t *testing.T, path, src string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	opts, _ := policyDir(t, fullPolicy)
	pol, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Providers) != 2 || len(pol.Rules) != 1 || !reflect.DeepEqual(pol.Files, []string{opts.Path}) {
		t.Errorf("policy = %+v", pol)
	}
	if pol.Rules[0].Pos.File != opts.Path {
		t.Errorf("position file = %q", pol.Rules[0].Pos.File)
	}
}

func TestLoadDropIns(t *testing.T) {
	opts, _ := policyDir(t, head+okRule)
	if err := os.Mkdir(opts.DropInDir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := opts.DropInDir
	// 20-b uses the provider that 10-a defines: references span files.
	writeFile(t, filepath.Join(d, "20-b.yaml"), "version: 1\nrules:\n  - principals: [b]\n    provider: ci\n    identities: [{sub: b}]\ndeny:\n  - sub: evil-b\n", 0o644)
	writeFile(t, filepath.Join(d, "10-a.yaml"), "version: 1\nproviders:\n  ci:\n    issuer: https://ci.example.com\n    client_ids: [ci]\nrules:\n  - principals: [a]\n    provider: corp\n    identities: [{sub: a}]\ndeny:\n  - sub: evil-a\n", 0o644)
	writeFile(t, filepath.Join(d, ".hidden.yaml"), "not: [valid", 0o644)
	writeFile(t, filepath.Join(d, "x.yml"), "not: [valid", 0o644)
	writeFile(t, filepath.Join(d, "README"), "not: [valid", 0o644)
	writeFile(t, filepath.Join(d, "30-c.yaml~"), "not: [valid", 0o644)

	pol, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{opts.Path, filepath.Join(d, "10-a.yaml"), filepath.Join(d, "20-b.yaml")}
	if !reflect.DeepEqual(pol.Files, wantFiles) {
		t.Errorf("files = %v", pol.Files)
	}
	var principals, deny []string
	for _, r := range pol.Rules {
		principals = append(principals, r.Principals...)
	}
	for _, id := range pol.Deny {
		deny = append(deny, id.Value)
	}
	if !reflect.DeepEqual(principals, []string{"root", "a", "b"}) || !reflect.DeepEqual(deny, []string{"evil-a", "evil-b"}) {
		t.Errorf("rules %v deny %v", principals, deny)
	}
	if pol.Rules[2].Pos != (Position{filepath.Join(d, "20-b.yaml"), 3}) {
		t.Errorf("pos = %v", pol.Rules[2].Pos)
	}
	if d := pol.Evaluate("b", "ci", Claims{"sub": "b"}); !d.Allowed {
		t.Errorf("b: %+v", d)
	}
}

func TestLoadDropInErrors(t *testing.T) {
	tests := []struct {
		name, file, src, want string
	}{
		{"duplicate provider", "10-a.yaml", "version: 1\nproviders:\n  corp:\n    issuer: https://other.example\n    client_ids: [x]\n", "10-a.yaml:3: providers.corp: provider \"corp\" is already defined at "},
		{"duplicate issuer", "10-a.yaml", "version: 1\nproviders:\n  corp2:\n    issuer: https://sso.example.com\n    client_ids: [x]\n", "10-a.yaml:4: providers.corp2.issuer: provider \"corp\""},
		{"bad rule", "10-a.yaml", "version: 1\nrules:\n  - principals: [root]\n    provider: corp\n    identities: [{email: \"\"}]\n", "10-a.yaml:5: rules[0].identities[0].email: is empty"},
		{"unknown provider", "10-a.yaml", "version: 1\nrules:\n  - principals: [root]\n    provider: nope\n    identities: [{sub: x}]\n", "10-a.yaml:4: rules[0].provider: unknown provider \"nope\""},
		{"no version", "10-a.yaml", "deny:\n  - sub: x\n", "10-a.yaml:1: version: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, _ := policyDir(t, head+okRule)
			if err := os.Mkdir(opts.DropInDir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(opts.DropInDir, tt.file), tt.src, 0o644)
			_, err := Load(opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestLoadNoDropInDir(t *testing.T) {
	opts, _ := policyDir(t, head+okRule)
	if _, err := Load(opts); err != nil {
		t.Fatal(err)
	}
	opts.DropInDir = ""
	if _, err := Load(opts); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFileChecks(t *testing.T) {
	other := os.Getuid() + 1
	tests := []struct {
		name  string
		setup func(t *testing.T, opts *LoadOptions, dir string)
		want  string
	}{
		{"file group writable", func(t *testing.T, o *LoadOptions, _ string) { chmod(t, o.Path, 0o664) }, "policy file %P is writable by group or others (mode 0664); fix: chown %O %P && chmod 644 %P"},
		{"file world writable", func(t *testing.T, o *LoadOptions, _ string) { chmod(t, o.Path, 0o666) }, "is writable by group or others (mode 0666)"},
		{"file untrusted owner", func(t *testing.T, o *LoadOptions, _ string) { o.TrustedUIDs = []int{other} }, "policy directory %D is owned by uid"},
		{"dir writable", func(t *testing.T, _ *LoadOptions, d string) { chmod(t, d, 0o777) }, "policy directory %D is writable by group or others (mode 0777); fix: chown %O %D && chmod 755 %D"},
		{"dir sticky world writable", func(t *testing.T, _ *LoadOptions, d string) { chmod(t, d, 0o777|os.ModeSticky) }, "policy directory %D is writable"},
		{"missing", func(t *testing.T, o *LoadOptions, _ string) { os.Remove(o.Path) }, "policy file %P does not exist"},
		{"missing dir", func(t *testing.T, o *LoadOptions, d string) { o.Path = filepath.Join(d, "nope", "p.yaml") }, "policy file %P does not exist"},
		{"directory", func(t *testing.T, o *LoadOptions, _ string) { os.Remove(o.Path); os.Mkdir(o.Path, 0o755) }, "policy file %P is a directory; it must be a regular file"},
		{"fifo", func(t *testing.T, o *LoadOptions, _ string) {
			os.Remove(o.Path)
			if err := syscall.Mkfifo(o.Path, 0o644); err != nil {
				t.Skip(err)
			}
		}, "policy file %P is a named pipe"},
		{"symlink out of dir", func(t *testing.T, o *LoadOptions, _ string) {
			outside := filepath.Join(t.TempDir(), "p.yaml")
			writeFile(t, outside, head, 0o644)
			os.Remove(o.Path)
			if err := os.Symlink(outside, o.Path); err != nil {
				t.Fatal(err)
			}
		}, "opening %P"},
		{"drop-in writable", func(t *testing.T, o *LoadOptions, _ string) {
			os.Mkdir(o.DropInDir, 0o755)
			writeFile(t, filepath.Join(o.DropInDir, "a.yaml"), "version: 1\n", 0o646)
		}, "policy file %I/a.yaml is writable by group or others"},
		{"drop-in dir writable", func(t *testing.T, o *LoadOptions, _ string) {
			os.Mkdir(o.DropInDir, 0o755)
			chmod(t, o.DropInDir, 0o775)
		}, "policy directory %I is writable by group or others"},
		{"drop-in dir is a file", func(t *testing.T, o *LoadOptions, _ string) { writeFile(t, o.DropInDir, "", 0o644) }, "policy directory %I is a regular file; it must be a directory"},
		{"too large", func(t *testing.T, o *LoadOptions, _ string) {
			writeFile(t, o.Path, head+"#"+strings.Repeat("x", maxFileSize)+"\n", 0o644)
		}, "%P:1: file is larger than 4 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, dir := policyDir(t, head+okRule)
			tt.setup(t, &opts, dir)
			_, err := Load(opts)
			owner := "root:root"
			if !slices.Contains(opts.TrustedUIDs, 0) {
				owner = strconv.Itoa(opts.TrustedUIDs[0])
			}
			want := strings.NewReplacer("%P", opts.Path, "%D", dir, "%I", opts.DropInDir, "%O", owner).Replace(tt.want)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v\nwant %q", err, want)
			}
			if strings.Contains(tt.want, "fix:") && !errors.Is(err, ErrUnsafeFile) {
				t.Errorf("not ErrUnsafeFile: %v", err)
			}
		})
	}
}

func TestLoadSymlinkInsideDir(t *testing.T) {
	opts, dir := policyDir(t, head+okRule)
	real := filepath.Join(dir, "real.yaml")
	if err := os.Rename(opts.Path, real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.yaml", opts.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(opts); err != nil {
		t.Errorf("a link inside the trusted directory: %v", err)
	}
	chmod(t, real, 0o666)
	if _, err := Load(opts); !errors.Is(err, ErrUnsafeFile) {
		t.Errorf("the link target is checked: %v", err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// fakeInfo lets the owner check be tested without chown, which needs root.
type fakeInfo struct {
	os.FileInfo
	mode os.FileMode
	uid  uint32
}

func (f fakeInfo) Mode() os.FileMode { return f.mode }
func (f fakeInfo) IsDir() bool       { return f.mode.IsDir() }
func (f fakeInfo) Sys() any          { return &syscall.Stat_t{Uid: f.uid} }

func TestCheckTrustedOwner(t *testing.T) {
	tests := []struct {
		mode    os.FileMode
		uid     uint32
		trusted []int
		want    string
	}{
		{0o644, 0, []int{0}, ""},
		{0o644, 1000, []int{0, 1000}, ""},
		{0o644, 1000, []int{0}, "policy file /p is owned by uid 1000, which is not trusted; fix: chown root:root /p && chmod 644 /p"},
		{0o664, 1000, []int{0}, "policy file /p is owned by uid 1000, which is not trusted and is writable by group or others (mode 0664); fix: chown root:root /p && chmod 644 /p"},
		{0o644, 0, []int{1000}, "owned by uid 0, which is not trusted; fix: chown 1000 /p"},
		{0o755 | os.ModeDir, 1000, []int{0}, "policy directory /p is owned by uid 1000, which is not trusted; fix: chown root:root /p && chmod 755 /p"},
	}
	for _, tt := range tests {
		isDir := tt.mode.IsDir()
		err := checkTrusted(fakeInfo{mode: tt.mode, uid: tt.uid}, "/p", tt.trusted, isDir)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v uid %d: %v", tt.mode, tt.uid, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrUnsafeFile) {
			t.Errorf("%v uid %d: err = %v\nwant %q", tt.mode, tt.uid, err, tt.want)
		}
	}
}

// A directory above the policy's that others can write lets them replace the policy's directory:
// Load and LoadForPrincipal refuse it, as sshd refuses such an AuthorizedKeysCommand.
func TestLoadParentDirectoryWritable(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "opkssh")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policies.yaml")
	writeFile(t, path, fullPolicy, 0o644)
	opts := LoadOptions{Path: path, TrustedUIDs: []int{os.Getuid()}}
	if _, err := Load(opts); err != nil {
		t.Fatalf("good tree: %v", err)
	}
	if err := os.Chmod(top, 0o757); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() error{
		"Load":             func() error { _, err := Load(opts); return err },
		"LoadForPrincipal": func() error { _, err := LoadForPrincipal(opts, t.TempDir(), "alice"); return err },
	} {
		err := load()
		if !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), top+" is writable by group or others") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
