package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A binary in a sticky, world-writable directory (such as /tmp): doctor says to move the binary,
// never to change the directory.
func TestBinaryInStickyDir(t *testing.T) {
	t.Parallel()
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(shared, "opkssh")
	writeFile(t, bin, "", 0o755)
	d := &doctor{}
	d.binary(bin)
	f, ok := find(d.findings, want{Fail, "binary", shared + " is owned by uid 0 with mode 0777", ""})
	if !ok {
		t.Fatalf("no finding about %s:\n%s", shared, dump(d.findings))
	}
	if !strings.Contains(f.Fix, "leave "+shared+" as it is and move the binary out of it") || !strings.Contains(f.Fix, bin+" server install") {
		t.Errorf("fix = %q, want to move the binary", f.Fix)
	}
	for _, f := range d.findings {
		if strings.Contains(f.Fix, "chmod") && !strings.Contains(f.Fix, shared+"/") {
			t.Errorf("a fix changes a directory: %q", f.Fix)
		}
	}
}

func TestParentFix(t *testing.T) {
	t.Parallel()
	plain, err := os.Stat(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ dir, want string }{
		{"/tmp", "leave /tmp as it is and move the binary out of it"},
		{"/var/tmp", "leave /var/tmp as it is"},
		{"/home/alice", "leave /home/alice as it is"},
		{"/home", "leave /home as it is"},
		{"/usr/local/bin", "do not change /usr/local/bin to suit opkssh"},
		{"/usr", "do not change /usr "},
		{"/", "do not change / "},
		{"/opt/tools/bin", "chown root:root /opt/tools/bin && chmod go-w /opt/tools/bin"},
	}
	for _, tt := range tests {
		got := parentFix(tt.dir, tt.dir+"/opkssh", plain)
		if !strings.Contains(got, tt.want) {
			t.Errorf("parentFix(%s) = %q, want %q", tt.dir, got, tt.want)
		}
		if tt.dir != "/opt/tools/bin" && (strings.Contains(got, "chmod") || strings.Contains(got, "chown")) {
			t.Errorf("parentFix(%s) = %q changes a directory it must leave alone", tt.dir, got)
		}
	}
}
