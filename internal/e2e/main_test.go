// Package e2e tests opkssh as users meet it: the built binary, the test OP over HTTP, a scripted
// browser, and (as root, with openssh-server installed) a real sshd on 127.0.0.1 that asks the
// binary about every login, and the real ssh, sftp and port-forwarding clients.
//
// The tests run in internal/sandbox's private view of the system directories: server install,
// the accounts made with useradd, the install directories under /var/lib and /run/sshd all stay
// there, the view starts without any opkssh installed on the machine, and the run fails if the
// machine changed. In CI (CI=true) a missing sshd, a non-root user or no sandbox is a failure,
// never a skip.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opkssh-team/opkssh/internal/sandbox"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
)

var (
	opksshBin  string // the built binary
	browserDir string // holds xdg-open: the scripted browser
	sshdErr    error  // why the sshd tests cannot run here, if they cannot
)

// installed are the paths of an opkssh server install, hidden from the sandbox's view so that the
// tests start from a machine without one (and never meet the machine's own).
var installed = []string{"/etc/opkssh", "/usr/local/bin/opkssh", "/etc/ssh/sshd_config.d/60-opkssh.conf",
	"/var/cache/opkssh", "/var/log/opkssh"}

func TestMain(m *testing.M) {
	o := sandbox.Defaults()
	// Also hidden: the machine's sshd pid file and systemd's marker, so that install and uninstall
	// never signal the machine's sshd or ask its service manager to reload it, and nscd's socket,
	// so that accounts made in the sandbox are looked up in the sandbox's /etc/passwd.
	o.Hide = slices.Concat(installed, []string{"/run/sshd.pid", "/run/systemd/system", "/run/nscd"})
	os.Exit(sandbox.Main(o, func(unavailable error) int { return run(m, unavailable) }))
}

func run(m *testing.M, noSandbox error) int {
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
	if sshdErr == nil && noSandbox != nil {
		sshdErr = fmt.Errorf("the sshd tests create accounts and write /etc, /var/lib and /run, so they run only in an isolated file-system view: %w", noSandbox)
	}
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
