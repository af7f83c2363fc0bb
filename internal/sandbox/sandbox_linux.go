package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The parent re-executes the test binary twice over: first as the init (pid 1) of new mount and
// pid namespaces, which builds the sandbox and reaps orphaned processes, then, from there, as the
// tests. The variables say which role a process has, where the tmpfs goes and which mount
// namespace the parent is in: a process still in that namespace refuses to mount anything, so
// setting these variables by hand can never put overlays on the machine's own /etc.
const (
	envRole = "OPKSSH_SANDBOX_ROLE" // roleInit or roleTests
	envDir  = "OPKSSH_SANDBOX_DIR"
	envNS   = "OPKSSH_SANDBOX_PARENT_NS"
	envErr  = "OPKSSH_SANDBOX_ERROR" // why init could not build the sandbox

	roleInit  = "init"
	roleTests = "tests"
)

// hostRootFD is the descriptor of the parent's root directory that init and the tests inherit:
// the sandbox's own tests look at the machine through it.
const hostRootFD = 3

// hostRoot is the machine's root directory seen from inside ("" outside a sandbox), and
// parentMountNS the mount namespace the parent ran in.
var hostRoot, parentMountNS string

// Main runs the tests (run) inside a sandbox and returns the exit code for os.Exit. Called from
// TestMain, it re-executes the test binary in new mount and pid namespaces and returns the
// tests' exit code, or 1 if the machine changed meanwhile. In the sandbox, and where no sandbox
// can be made, it calls run itself, passing nil or the reason there is no sandbox.
func Main(o Options, run func(unavailable error) int) int {
	switch os.Getenv(envRole) {
	case roleInit:
		return initMain(o)
	case roleTests:
		return run(testsEnv())
	}
	if os.Geteuid() != 0 {
		return run(errors.New("making a private mount namespace needs root"))
	}
	return reexec(o, run)
}

func reexec(o Options, run func(error) int) int {
	before, err := Take(o.Compare, o.List)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: describing the machine before the tests: %v\n", err)
		return 1
	}
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return run(fmt.Errorf("reading this process's mount namespace: %w", err))
	}
	exe, err := os.Executable()
	if err != nil {
		return run(err)
	}
	root, err := os.Open("/")
	if err != nil {
		return run(err)
	}
	defer root.Close()
	dir, err := os.MkdirTemp("", "opkssh-sandbox-")
	if err != nil {
		return run(err)
	}
	defer os.Remove(dir) // empty here: the tmpfs on it was the sandbox's only
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envRole+"="+roleInit, envDir+"="+dir, envNS+"="+ns)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{root} // hostRootFD
	// Go makes / private (MS_REC|MS_PRIVATE) in the child when it unshares the mount namespace, so
	// nothing mounted there propagates back. The pid namespace keeps the tests' processes apart
	// from the machine's (userdel looks for processes of the account's uid), and its end kills
	// whatever the tests left running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig: syscall.SIGKILL}
	// Pdeathsig follows the thread that started the child, not the process: keep this goroutine on
	// it until the child has exited.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return run(fmt.Errorf("starting the tests in new mount and pid namespaces: %w", err))
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	code := 0
	if err := cmd.Wait(); err != nil {
		code = 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
	}
	after, err := Take(o.Compare, o.List)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: describing the machine after the tests: %v\n", err)
		return 1
	}
	if diff := before.Diff(after); len(diff) > 0 {
		fmt.Fprintf(os.Stderr, "sandbox: FAIL: the machine changed while the tests ran (by them, or by another process meanwhile):\n  %s\n",
			strings.Join(diff, "\n  "))
		return 1
	}
	return code
}

// initMain is pid 1 of the sandbox: it builds the sandbox, mounts a /proc that shows the
// sandbox's processes only, runs the tests as its child, reaps the processes they orphan and
// returns the tests' exit code. If the sandbox cannot be built the tests still run, told why.
func initMain(o Options) int {
	dir, parentNS := os.Getenv(envDir), os.Getenv(envNS)
	err := enter(o, dir, parentNS)
	if err == nil && os.Getpid() == 1 {
		if err = unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			err = fmt.Errorf("mounting /proc for the pid namespace: %w", err)
		}
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, envRole+"=") || strings.HasPrefix(kv, envDir+"=") || strings.HasPrefix(kv, envErr+"=")
	})
	env = append(env, envRole+"="+roleTests)
	if err != nil {
		env = append(env, envErr+"="+err.Error())
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	pid, err := syscall.ForkExec(exe, os.Args, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2, hostRootFD}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: starting the tests: %v\n", err)
		return 1
	}
	go func() {
		for s := range sigs {
			syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "sandbox: waiting for the tests: %v\n", err)
			return 1
		}
		if wpid != pid {
			continue // an orphan the tests left: reaped, so that no zombie holds its uid
		}
		if ws.Exited() {
			return ws.ExitStatus()
		}
		return 1
	}
}

// testsEnv reads, in the tests' process, what init left: the reason there is no sandbox, if any,
// and the descriptor of the machine's root.
func testsEnv() error {
	parentNS, initErr := os.Getenv(envNS), os.Getenv(envErr)
	for _, k := range []string{envRole, envNS, envErr} {
		os.Unsetenv(k)
	}
	if initErr != "" {
		return errors.New(initErr)
	}
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	if parentNS == "" || ns == parentNS {
		return fmt.Errorf("%s is set but this process shares its parent's mount namespace %s", envRole, ns)
	}
	syscall.CloseOnExec(hostRootFD) // the tests' own subprocesses do not get it
	hostRoot, parentMountNS = "/proc/self/fd/"+strconv.Itoa(hostRootFD), parentNS
	return nil
}

// enter builds the sandbox in this (re-executed) process: tmpfs on dir, an overlay on each of
// o.Dirs with its upper layer on that tmpfs, the mounts that were below them and the kept paths
// bound back, and o.Hide removed.
func enter(o Options, dir, parentNS string) error {
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	if parentNS == "" || ns == parentNS {
		return fmt.Errorf("%s is set but this process shares its parent's mount namespace %s: refusing to mount", envDir, ns)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	if err := unix.Mount("opkssh-sandbox", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", dir, err)
	}
	// Everything that must survive the overlays is opened first and reached through
	// /proc/self/fd afterwards: the overlays hide the paths, not the open files.
	layers, err := open(dir)
	if err != nil {
		return err
	}
	under, err := mountsUnder(o.Dirs)
	if err != nil {
		return err
	}
	mounts, err := openAll(under)
	if err != nil {
		return err
	}
	kept, err := openAll(keepPaths(o))
	if err != nil {
		return err
	}
	for i, d := range o.Dirs {
		if strings.ContainsAny(d, ",:\\") {
			return fmt.Errorf("cannot overlay %q: a comma, colon or backslash in the path", d)
		}
		upper := filepath.Join(layers, strconv.Itoa(i), "upper")
		work := filepath.Join(layers, strconv.Itoa(i), "work")
		for _, p := range []string{upper, work} {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		}
		if err := unix.Mount("overlay", d, "overlay", 0, "lowerdir="+d+",upperdir="+upper+",workdir="+work); err != nil {
			return fmt.Errorf("overlay on %s: %w", d, err)
		}
	}
	for _, m := range mounts {
		if err := unix.Mount(m.fd, m.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s back: %w", m.path, err)
		}
		if err := unix.Mount("", m.path, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", m.path, err)
		}
	}
	for _, k := range kept {
		if err := unix.Mount(k.fd, k.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("keeping %s: %w", k.path, err)
		}
	}
	return hide(o)
}

// hide removes each of o.Hide from the view, after checking that the removal can only reach the
// overlay's upper layer.
func hide(o Options) error {
	for _, p := range o.Hide {
		if !under(p, o.Dirs) {
			return fmt.Errorf("cannot hide %s: not below an overlaid directory", p)
		}
		var fs unix.Statfs_t
		if err := unix.Statfs(filepath.Dir(p), &fs); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
		if fs.Type != unix.OVERLAYFS_SUPER_MAGIC {
			return fmt.Errorf("cannot hide %s: its directory is not on the overlay", p)
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("hiding %s: %w", p, err)
		}
	}
	return nil
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// keepPaths are o.Keep plus the module, the temporary directory and the build cache, where they
// lie below an overlaid directory.
func keepPaths(o Options) []string {
	cands := append([]string{}, o.Keep...)
	if wd, err := os.Getwd(); err == nil {
		cands = append(cands, moduleRoot(wd))
	}
	cands = append(cands, os.TempDir())
	if c := os.Getenv("GOCACHE"); c != "" {
		cands = append(cands, c)
	} else if c, err := os.UserCacheDir(); err == nil {
		cands = append(cands, filepath.Join(c, "go-build"))
	}
	var out []string
	for _, c := range cands {
		if c, err := filepath.EvalSymlinks(c); err == nil && under(c, o.Dirs) {
			out = append(out, c)
		}
	}
	return out
}

func moduleRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// mountsUnder lists the mount points strictly below dirs that are not below another listed one
// (binding those back recursively brings the rest), in mount order.
func mountsUnder(dirs []string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if under(p, dirs) && !under(p, out) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

type opened struct {
	path, fd string // fd: /proc/self/fd/N, which stays valid once path is covered
}

func open(path string) (string, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", path, err)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd), nil
}

func openAll(paths []string) ([]opened, error) {
	var out []opened
	for _, p := range paths {
		fd, err := open(p)
		if err != nil {
			return nil, err
		}
		out = append(out, opened{p, fd})
	}
	return out, nil
}
