// Package sshdtest runs a real OpenSSH server on 127.0.0.1 whose AuthorizedKeysCommand is a real
// opkssh binary, for the end-to-end tests and the demo. It needs root (sshd's privilege
// separation and the root-owned command path) and /usr/sbin/sshd.
//
// sshd refuses an AuthorizedKeysCommand unless the binary and every parent directory are owned by
// root and not writable by group or others, which rules out temporary directories under /tmp. So
// Install puts the binary, the policy and the log in a fresh 0755 directory under /var/lib, and
// everything else (host key, config, pid file) lives in the caller's work directory.
// Everything created is removed by the cleanup functions; sshd is stopped by its PID. The
// end-to-end tests also run all of it inside internal/sandbox, so that even a test that fails
// half-way leaves no account, directory or file on the machine.
package sshdtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHD is the server binary we drive.
const SSHD = "/usr/sbin/sshd"

// Available reports why a real sshd cannot be run here, or nil if it can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("sshd end-to-end tests need root")
	}
	if _, err := os.Stat(SSHD); err != nil {
		return fmt.Errorf("%s not found: install openssh-server", SSHD)
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		return errors.New("ssh client not found: install openssh-client")
	}
	return nil
}

// Install is a root-owned directory holding the opkssh binary, the policy and the decision log.
type Install struct {
	Dir    string // 0755, root-owned, under /var/lib
	Binary string // Dir/opkssh
	Policy string // Dir/policies.yaml
	Log    string // Dir/verify.log, writable by the verify user
	Cache  string // Dir/cache, the verify user's key cache (0700)
}

// NewInstall copies the opkssh binary into a fresh directory under /var/lib. verifyUser is the
// AuthorizedKeysCommandUser that must be able to write the log.
func NewInstall(binary, verifyUser string) (*Install, error) {
	dir, err := os.MkdirTemp("/var/lib", "opkssh-e2e-")
	if err != nil {
		return nil, err
	}
	in := &Install{Dir: dir, Binary: filepath.Join(dir, "opkssh"), Policy: filepath.Join(dir, "policies.yaml"),
		Log: filepath.Join(dir, "verify.log"), Cache: filepath.Join(dir, "cache")}
	if err := in.setup(binary, verifyUser); err != nil {
		in.Remove()
		return nil, err
	}
	return in, nil
}

func (in *Install) setup(binary, verifyUser string) error {
	if err := os.Chmod(in.Dir, 0o755); err != nil {
		return err
	}
	src, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	if err := os.WriteFile(in.Binary, src, 0o755); err != nil {
		return err
	}
	u, err := user.Lookup(verifyUser)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.WriteFile(in.Log, nil, 0o640); err != nil {
		return err
	}
	if err := os.Mkdir(in.Cache, 0o700); err != nil {
		return err
	}
	if err := os.Chown(in.Cache, uid, gid); err != nil {
		return err
	}
	return os.Chown(in.Log, uid, gid)
}

// WritePolicy replaces the policy file (root-owned, 0644).
func (in *Install) WritePolicy(content string) error {
	return os.WriteFile(in.Policy, []byte(content), 0o644)
}

// Remove deletes the install directory.
func (in *Install) Remove() error { return os.RemoveAll(in.Dir) }

// EnsureUser creates a local account for ssh logins if it does not exist. It returns a function
// that deletes the account (and its home) again if it was created here.
func EnsureUser(name string) (remove func() error, err error) {
	if _, err := user.Lookup(name); err == nil {
		return func() error { return nil }, nil
	}
	// "*" as password: no password login, but not a locked account, which sshd would refuse.
	out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	return func() error {
		out, err := exec.Command("userdel", "--remove", name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("userdel %s: %v: %s", name, err, out)
		}
		return nil
	}, nil
}

// Options configure a server.
type Options struct {
	WorkDir    string // host key, config, pid file; any directory
	Install    *Install
	VerifyUser string // AuthorizedKeysCommandUser; "nobody" if empty
	// MemlockZero starts sshd (and so verify) with RLIMIT_MEMLOCK 0, as in locked-down services.
	MemlockZero bool
	Stderr      io.Writer // sshd's log (-e); discarded if nil
	// SystemConfig runs sshd on this configuration (e.g. /etc/ssh/sshd_config, with whatever
	// "opkssh server install" put in its drop-ins) instead of writing one; only the port, listen
	// address, pid file and host key are overridden. Install is then unused.
	SystemConfig string
	// VerifyArgs are appended to verify's arguments in the AuthorizedKeysCommand line, as sshd
	// reads them (quote words that hold spaces), e.g. --chain "/path/cmd %u".
	VerifyArgs []string
}

// Server is a running sshd.
type Server struct {
	Port       int
	HostKey    ssh.PublicKey
	KnownHosts string // a known_hosts file pinning HostKey
	cmd        *exec.Cmd
	logBuf     *syncBuffer
	stopOnce   sync.Once
}

// Start launches sshd on a free 127.0.0.1 port and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.VerifyUser == "" {
		opts.VerifyUser = "nobody"
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	hostKeyPath := filepath.Join(opts.WorkDir, "ssh_host_ed25519_key")
	hostPub, err := writeHostKey(hostKeyPath)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	config := filepath.Join(opts.WorkDir, "sshd_config")
	var extra []string
	if opts.SystemConfig != "" {
		config = opts.SystemConfig
		extra = []string{"-o", "Port=" + strconv.Itoa(port), "-o", "ListenAddress=127.0.0.1",
			"-o", "PidFile=" + filepath.Join(opts.WorkDir, "sshd.pid"), "-o", "HostKey=" + hostKeyPath}
	} else if err := writeConfig(config, port, hostKeyPath, opts); err != nil {
		return nil, err
	}
	if out, err := exec.Command(SSHD, append([]string{"-t", "-f", config}, extra...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sshd -t rejected the config: %v: %s", err, out)
	}
	knownHosts := filepath.Join(opts.WorkDir, "known_hosts")
	kh := fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(hostPub))
	if err := os.WriteFile(knownHosts, []byte(kh), 0o644); err != nil {
		return nil, err
	}

	var cmd *exec.Cmd
	if opts.MemlockZero {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `ulimit -l 0 && exec "$0" -D -e -f "$@"`, SSHD, config}, extra...)...)
	} else {
		cmd = exec.Command(SSHD, append([]string{"-D", "-e", "-f", config}, extra...)...)
	}
	buf := &syncBuffer{}
	var w io.Writer = buf
	if opts.Stderr != nil {
		w = io.MultiWriter(buf, opts.Stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Port: port, HostKey: hostPub, KnownHosts: knownHosts, cmd: cmd, logBuf: buf}
	if err := waitListening(port, 10*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("sshd did not start: %v\n%s", err, buf.String())
	}
	return s, nil
}

// writeConfig writes the test sshd's own configuration.
func writeConfig(config string, port int, hostKeyPath string, opts Options) error {
	conf := fmt.Sprintf(`# written by opkssh's sshdtest
ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile %s
AuthorizedKeysFile none
AuthorizedKeysCommand %s verify %%u %%k %%t --policy %s --log-file %s --cache-dir %s%s
AuthorizedKeysCommandUser %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
Subsystem sftp internal-sftp
LogLevel VERBOSE
# Many logins at once (tests, benchmarks, Ansible-style fan-out) exceed the default 10:30:100.
MaxStartups 100:30:200
`, port, hostKeyPath, filepath.Join(opts.WorkDir, "sshd.pid"), opts.Install.Binary, opts.Install.Policy, opts.Install.Log, opts.Install.Cache, verifyArgs(opts.VerifyArgs), opts.VerifyUser)
	return os.WriteFile(config, []byte(conf), 0o600)
}

func verifyArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " " + strings.Join(args, " ")
}

// Log returns what sshd has logged so far.
func (s *Server) Log() string { return s.logBuf.String() }

// Stop terminates sshd by its PID and waits for it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
}

// ClientOptions are the options ssh, sftp and scp share for logging in with the key at keyPath
// (and keyPath-cert.pub), non-interactively, trusting only this server's host key.
func (s *Server) ClientOptions(keyPath string) []string {
	return []string{
		"-F", "/dev/null",
		"-i", keyPath,
		"-o", "CertificateFile=" + keyPath + "-cert.pub",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.KnownHosts,
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
	}
}

// SSHArgs returns the ssh arguments for logging in as user; the host (127.0.0.1) comes next.
func (s *Server) SSHArgs(user, keyPath string) []string {
	return append(s.ClientOptions(keyPath), "-p", strconv.Itoa(s.Port), "-l", user)
}

// Run runs a command over ssh as user and returns its stdout and stderr.
func (s *Server) Run(ctx context.Context, user, keyPath string, command ...string) (string, string, error) {
	args := append(s.SSHArgs(user, keyPath), "127.0.0.1", "--")
	args = append(args, command...)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func writeHostKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "opkssh e2e host key")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Clone(s.b.String())
}
