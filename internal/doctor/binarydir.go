package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// installedBinary is where "opkssh server install" puts the binary by default.
const installedBinary = "/usr/local/bin/opkssh"

// systemDirs are directories doctor never suggests changing the owner or mode of: other programs
// and users rely on them being as they are (/tmp must stay world-writable and sticky).
var systemDirs = []string{
	"/", "/bin", "/sbin", "/lib", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec",
	"/usr/local", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/usr/local/libexec",
	"/opt", "/etc", "/var", "/var/lib", "/var/tmp", "/tmp", "/dev", "/dev/shm", "/run", "/srv",
	"/home", "/root", "/mnt", "/media",
}

// leaveAlone says whether dir, a parent of the binary, is one to move the binary out of rather
// than to change: a system directory, a user's home directory, or a sticky directory (a shared
// one, such as a scratch space, whose mode is deliberate).
func leaveAlone(dir string, fi os.FileInfo) bool {
	if fi.Mode()&os.ModeSticky != 0 || slices.Contains(systemDirs, dir) {
		return true
	}
	return filepath.Dir(dir) == "/home"
}

// parentFix is the advice for a parent directory dir of the binary at path that sshd refuses.
func parentFix(dir, path string, fi os.FileInfo) string {
	if !leaveAlone(dir, fi) {
		return fmt.Sprintf("chown root:root %s && chmod go-w %s", dir, dir)
	}
	if dir == "/" || strings.HasPrefix(installedBinary, dir+"/") {
		return fmt.Sprintf("do not change %s to suit opkssh: it is a system directory, and its owner or mode is not what the system expects; find out why", dir)
	}
	return fmt.Sprintf("leave %s as it is and move the binary out of it: \"sudo %s server install\" copies it to %s (root-owned) and points sshd at the copy", dir, path, installedBinary)
}
