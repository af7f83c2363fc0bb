// Package sandbox runs a test binary in a private, throw-away view of the machine's system
// directories, so that tests which install opkssh, edit sshd's configuration or create accounts
// can run on any machine, a contributor's real server included, and leave it as it was.
//
// Main re-executes the test binary in new mount and pid namespaces (Linux, root): first as the
// namespace's init, which builds the sandbox and reaps orphaned processes, then under it as the
// tests, which see none of the machine's processes and whose leftovers die with the namespace.
// Before any test runs, each of Options.Dirs (/etc, /usr/local, /var, /home, /run) is covered by an overlay whose
// writable layer lives on a private tmpfs: the tests see the machine's files, and everything they
// write, create, chown or delete lands in that tmpfs and is gone when the process exits. Mounts
// that sat below those directories are bound back (read-only), and the module, the temporary
// directory and the build cache stay the machine's own, so coverage profiles, fuzz corpora and the
// build cache still work. Options.Hide removes paths from the view: a test can start from a
// machine without opkssh even on a server that has it.
//
// The parent process compares Options.Compare and Options.List before and after the run and fails
// the run if the machine changed: the proof, on every run, that isolation held.
//
// Where no namespace can be made (not Linux, not root, no permission to mount) Main runs the tests
// directly and hands them the reason; Need turns it into a skip, or a failure when CI=true.
package sandbox

import (
	"os"
	"testing"
)

// Options say what the sandbox covers and what the parent checks afterwards.
type Options struct {
	// Dirs are overlaid: writes below them stay in the sandbox. Dirs must not nest.
	Dirs []string
	// Hide are paths under Dirs removed from the sandbox's view before the tests run.
	Hide []string
	// Keep are paths under Dirs that stay the machine's own (writes reach the machine). The
	// module directory holding the working directory, os.TempDir() and the Go build cache are
	// always kept.
	Keep []string
	// Compare are files or trees whose names, types, modes, owners and contents must be the same
	// after the run; List are directories whose entries' names, types, modes and owners must be.
	Compare, List []string
}

// Defaults covers what opkssh's install, the sshd tests and useradd touch.
func Defaults() Options {
	return Options{
		Dirs: []string{"/etc", "/usr/local", "/var", "/home", "/run"},
		Compare: []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
			"/etc/ssh", "/etc/opkssh", "/usr/local/bin/opkssh"},
		List: []string{"/etc", "/usr/local/bin", "/var/lib", "/var/cache", "/var/log", "/home", "/run"},
	}
}

// Need skips t when err (the reason Main gave) says there is no sandbox, and fails it under CI.
func Need(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI must run this test in an isolated file-system view, but: %v", err)
	}
	t.Skipf("skipping: this test changes system paths and needs an isolated file-system view (CI=true would fail here): %v", err)
}
