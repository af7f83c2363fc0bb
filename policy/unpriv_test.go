package policy

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// nobodyID is the uid and gid of the unprivileged account the root-run tests re-execute as. The
// number is fixed rather than looked up so the test reads nothing of the machine's account files.
const nobodyID = 65534

// runUnprivileged runs the subtest t again, in a copy of this test binary running as uid and gid
// 65534, and fails t unless that run passed. Root may search and read everything, so permission
// checks can only be observed from an unprivileged process; CI runs as root, so skipping there
// would leave these checks untested.
//
// The copy and its temporary directory live in a fresh directory that the unprivileged user can
// search (0755) with a work directory it owns: the go build cache and t.TempDir are root's 0700.
func runUnprivileged(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "opkssh-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "policy.test")
	copyFile(t, self, bin, 0o755)
	work := filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, nobodyID, nobodyID); err != nil {
		t.Fatal(err)
	}

	// The pattern names this subtest only, each level anchored.
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(bin, "-test.run", strings.Join(parts, "/"), "-test.v", "-test.count=1")
	cmd.Dir = work
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + work, "TMPDIR=" + work}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as uid %d: %v\n%s", nobodyID, err, out)
	}
	// "ok" with no test run, or a skip, would prove nothing.
	if want := "--- PASS: " + t.Name() + " "; !strings.Contains(string(out), want) || strings.Contains(string(out), "--- SKIP") {
		t.Fatalf("as uid %d the subtest did not pass (want %q):\n%s", nobodyID, want, out)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
