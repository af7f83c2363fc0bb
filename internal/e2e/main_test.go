// Package e2e tests opkssh as users meet it: the built binary, the test OP over HTTP, a scripted
// browser, and (as root, with openssh-server installed) a real sshd on 127.0.0.1 that asks the
// binary about every login, and the real ssh, sftp and port-forwarding clients.
//
// In CI (CI=true) a missing sshd or a non-root user is a failure, never a skip.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opkssh-team/opkssh/internal/sshdtest"
)

var (
	opksshBin  string // the built binary
	browserDir string // holds xdg-open: the scripted browser
	sshdErr    error  // why the sshd tests cannot run here, if they cannot
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "opkssh-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	opksshBin = filepath.Join(dir, "opkssh")
	browserDir = filepath.Join(dir, "browser")
	for _, b := range [][2]string{{opksshBin, "../../cmd/opkssh"}, {filepath.Join(browserDir, "xdg-open"), "../testop/fakebrowser"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // test the binary as make build ships it
		out, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	sshdErr = sshdtest.Available()
	if sshdErr != nil && os.Getenv("CI") == "true" {
		fmt.Fprintf(os.Stderr, "e2e: CI must run the sshd tests, but: %v\n", sshdErr)
		return 1
	}
	return m.Run()
}

func needSSHD(t *testing.T) {
	t.Helper()
	if sshdErr != nil {
		t.Skipf("skipping real-sshd test (CI=true would fail here): %v", sshdErr)
	}
}
