// Package serverinstall sets a server up for opkssh and takes it down again: the unprivileged
// verify user, the binary where sshd accepts it, /etc/opkssh with a starter policy, the cache and
// log directories, and an sshd_config drop-in. Every step says what it does (and with DryRun only
// says it), is idempotent, and keeps a backup of any file it replaces. What install created, and
// the owner and mode of every existing path whose owner or mode it changed, are recorded in a state
// file so that Uninstall removes exactly that, restores the backups and gives existing paths their
// owner and mode back: sshd's configuration is left as it was before, and no file is left owned by
// a verify user that Uninstall deleted.
package serverinstall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opkssh-team/opkssh/internal/argv"
	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/serverconfig"
)

// Options name everything install touches; Defaults fills in the usual paths.
type Options struct {
	Source        string // the opkssh binary to install (default: this executable)
	BinaryPath    string // /usr/local/bin/opkssh
	ConfigDir     string // /etc/opkssh
	CacheDir      string // /var/cache/opkssh
	LogDir        string // /var/log/opkssh
	SSHDConfig    string // /etc/ssh/sshd_config (validated with sshd -t -f)
	DropIn        string // /etc/ssh/sshd_config.d/60-opkssh.conf
	SSHD          string // /usr/sbin/sshd
	VerifyUser    string // opkssh
	DryRun        bool
	Out           io.Writer
	Now           func() time.Time
	ReloadCommand []string // how to reload sshd; nil = decide (pid file, systemd, or nothing)
	// ChainExisting and ReplaceExisting say what to do with an AuthorizedKeysCommand that is
	// already configured (existing.go); without either, install explains it and stops.
	ChainExisting, ReplaceExisting bool
}

// Defaults returns the standard paths.
func Defaults() Options {
	return Options{
		BinaryPath: "/usr/local/bin/opkssh",
		ConfigDir:  serverconfig.ConfigDir,
		CacheDir:   serverconfig.CacheDir,
		LogDir:     serverconfig.LogDir,
		SSHDConfig: "/etc/ssh/sshd_config",
		DropIn:     "/etc/ssh/sshd_config.d/60-opkssh.conf",
		SSHD:       "/usr/sbin/sshd",
		VerifyUser: "opkssh",
	}
}

// State records what install created and changed, for Uninstall.
type State struct {
	CreatedUser  bool              `json:"created_user"`
	CreatedPaths []string          `json:"created_paths"` // files and directories, in creation order
	Backups      map[string]string `json:"backups"`       // replaced file -> its backup
	// Originals are the owner and mode of paths that existed before install and whose owner or
	// mode it changed (an existing cache directory taken over for the verify user, say).
	Originals      map[string]Original `json:"originals,omitempty"`
	InstalledAt    time.Time           `json:"installed_at"`
	Binary         string              `json:"binary"`
	VerifyUser     string              `json:"verify_user"`
	DropIn         string              `json:"drop_in"`
	SSHDConfigFile string              `json:"sshd_config"`
	CacheDir       string              `json:"cache_dir,omitempty"`
	LogDir         string              `json:"log_dir,omitempty"`
	// Chain is the existing AuthorizedKeysCommand that opkssh's line passes other keys to.
	Chain string `json:"chain,omitempty"`
}

// Original is a path's owner and permission bits as install found them.
type Original struct {
	UID  int         `json:"uid"`
	GID  int         `json:"gid"`
	Mode os.FileMode `json:"mode"`
}

func (o *Options) fill() {
	d := Defaults()
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&o.BinaryPath, d.BinaryPath}, {&o.ConfigDir, d.ConfigDir}, {&o.CacheDir, d.CacheDir}, {&o.LogDir, d.LogDir},
		{&o.SSHDConfig, d.SSHDConfig}, {&o.DropIn, d.DropIn}, {&o.SSHD, d.SSHD}, {&o.VerifyUser, d.VerifyUser},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// check refuses relative paths: sshd runs the command by absolute path, and a relative directory
// would land wherever install happened to be started.
func (o *Options) check() error {
	for _, f := range []struct{ flag, v string }{
		{"--binary-path", o.BinaryPath}, {"--config-dir", o.ConfigDir}, {"--cache-dir", o.CacheDir}, {"--log-dir", o.LogDir},
		{"--sshd-drop-in", o.DropIn}, {"--sshd-config", o.SSHDConfig}, {"sshd", o.SSHD},
	} {
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%s %q must be an absolute path", f.flag, f.v)
		}
		// sshd expands % in AuthorizedKeysCommand, and a line break would end it.
		if strings.ContainsAny(f.v, "%\n\r\x00") {
			return fmt.Errorf("%s %q must not contain %% or a line break", f.flag, f.v)
		}
	}
	return nil
}

func (o *Options) statePath() string { return filepath.Join(o.ConfigDir, ".install-state.json") }

// installer carries one run.
type installer struct {
	o        Options
	st       *State
	uid, gid int
	chain    string   // the existing command opkssh's line chains to; "" for none
	disable  []keyDef // configuration lines that would win over the drop-in
}

func (in *installer) say(format string, args ...any) {
	prefix := ""
	if in.o.DryRun {
		prefix = "would "
	}
	fmt.Fprintf(in.o.Out, "  "+prefix+format+"\n", args...)
}

func (in *installer) unchanged(format string, args ...any) {
	fmt.Fprintf(in.o.Out, "  ok: "+format+"\n", args...)
}

// Install performs (or with DryRun, describes) the installation.
func Install(o Options) error {
	o.fill()
	if err := o.check(); err != nil {
		return err
	}
	if !o.DryRun && os.Geteuid() != 0 {
		return errors.New("server install must run as root (try --dry-run to see what it would do)")
	}
	if o.Source == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this opkssh binary to install: %w", err)
		}
		o.Source = exe
	}
	st, err := readState(o.statePath())
	if err != nil {
		return fmt.Errorf("reading the state of an earlier install: %w", err)
	}
	st.Binary, st.VerifyUser, st.DropIn, st.SSHDConfigFile = o.BinaryPath, o.VerifyUser, o.DropIn, o.SSHDConfig
	st.CacheDir, st.LogDir = o.CacheDir, o.LogDir
	if st.InstalledAt.IsZero() {
		st.InstalledAt = o.Now()
	}
	in := &installer{o: o, st: st}
	steps := []struct {
		name string
		run  func() error
	}{
		{"existing AuthorizedKeysCommand", in.existing},
		{"verify user", in.user},
		{"binary", in.binary},
		{"policy directory", in.configDir},
		{"starter policy", in.policy},
		{"cache and log directories", in.cacheAndLog},
		{"lines that would override the drop-in", in.disableLines},
		{"sshd drop-in", in.dropIn},
		{"sshd -t", in.validate},
		{"effective AuthorizedKeysCommand", in.checkEffective},
	}
	for _, step := range steps {
		// The state is saved after every step, failed or not, so that uninstall can undo what
		// was done even if install stops here or is killed before the next step.
		err := step.run()
		if serr := in.save(); serr != nil {
			return errors.Join(stepError(step.name, err), fmt.Errorf("recording the install state after step %q: %w", step.name, serr))
		}
		if err != nil {
			return stepError(step.name, err)
		}
	}
	if err := in.reload(); err != nil {
		return stepError("reload sshd", err)
	}
	return nil
}

// stepError names the install step err happened in.
func stepError(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("install step %q: %w", step, err)
}

// save writes the install state, once the policy directory that holds it exists.
func (in *installer) save() error {
	if in.o.DryRun {
		return nil
	}
	if fi, err := os.Stat(in.o.ConfigDir); err != nil || !fi.IsDir() {
		return nil
	}
	return writeState(in.o.statePath(), in.st)
}

func (in *installer) user() error {
	u, err := user.Lookup(in.o.VerifyUser)
	if err == nil {
		in.uid, _ = strconv.Atoi(u.Uid)
		in.gid, _ = strconv.Atoi(u.Gid)
		in.unchanged("verify user %s exists (uid %s)", in.o.VerifyUser, u.Uid)
		return nil
	}
	in.say("create the system user %s (no home, no login shell) to run verify", in.o.VerifyUser)
	if in.o.DryRun {
		in.uid, in.gid = -1, -1
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", in.o.VerifyUser).CombinedOutput()
	if err != nil {
		return fmt.Errorf("useradd %s: %v: %s", in.o.VerifyUser, err, bytes.TrimSpace(out))
	}
	in.st.CreatedUser = true
	u, err = user.Lookup(in.o.VerifyUser)
	if err != nil {
		return fmt.Errorf("looking up the new user %s: %w", in.o.VerifyUser, err)
	}
	in.uid, _ = strconv.Atoi(u.Uid)
	in.gid, _ = strconv.Atoi(u.Gid)
	return nil
}

func (in *installer) binary() error {
	src, err := os.ReadFile(in.o.Source)
	if err != nil {
		return fmt.Errorf("reading the binary to install: %w", err)
	}
	if old, err := os.ReadFile(in.o.BinaryPath); err == nil && bytes.Equal(old, src) {
		in.unchanged("%s is this opkssh", in.o.BinaryPath)
		return in.ensureMode(in.o.BinaryPath, 0o755, 0, 0)
	}
	in.say("install %s (root:root 0755), where sshd accepts an AuthorizedKeysCommand", in.o.BinaryPath)
	if in.o.DryRun {
		return nil
	}
	if err := in.mkdirs(filepath.Dir(in.o.BinaryPath), 0o755, 0, 0); err != nil {
		return err
	}
	return in.writeFile(in.o.BinaryPath, src, 0o755, 0, 0)
}

func (in *installer) configDir() error {
	return in.dir(in.o.ConfigDir, 0o750, 0, in.gid, "policy directory (root, readable by the verify user's group)")
}

// StarterPolicy is written to a new policies.yaml: valid, commented, allowing nobody yet.
const StarterPolicy = `# opkssh policy: who may log in as which Unix user. See "opkssh add --help" and
# examples/policies.yaml. Owned by root, not writable by group or others.
version: 1
providers:
  # Replace with your OpenID Provider; the name is yours to choose.
  example:
    issuer: https://sso.example.com/realms/main
    client_ids: [opkssh]
    expiration: 24h
# Add rules with: opkssh add PRINCIPAL IDENTITY PROVIDER
#   e.g. opkssh add root alice@example.com example
`

func (in *installer) policy() error {
	path := filepath.Join(in.o.ConfigDir, serverconfig.PolicyFileName)
	if _, err := os.Stat(path); err == nil {
		in.unchanged("%s exists (left as it is)", path)
		return nil
	}
	in.say("write a commented starter policy %s (root:%s 0640)", path, in.o.VerifyUser)
	if in.o.DryRun {
		return nil
	}
	return in.writeFile(path, []byte(StarterPolicy), 0o640, 0, in.gid)
}

func (in *installer) cacheAndLog() error {
	if err := in.dir(in.o.CacheDir, 0o700, in.uid, in.gid, "key and policy cache (the verify user's only)"); err != nil {
		return err
	}
	return in.dir(in.o.LogDir, 0o750, in.uid, in.gid, "decision log directory")
}

// AuthorizedKeysCommandLine is the AuthorizedKeysCommand opkssh's drop-in sets: verify with every
// path that is not verify's default, and --chain with the existing command it keeps, if any.
func AuthorizedKeysCommandLine(o Options, chain string) string {
	o.fill()
	d := Defaults()
	args := []string{argv.Quote(o.BinaryPath), "verify", "%u", "%k", "%t"}
	if o.ConfigDir != d.ConfigDir {
		args = append(args, "--policy", argv.Quote(filepath.Join(o.ConfigDir, "policies.yaml")))
	}
	if o.CacheDir != d.CacheDir {
		args = append(args, "--cache-dir", argv.Quote(o.CacheDir))
	}
	if o.LogDir != d.LogDir {
		args = append(args, "--log-file", argv.Quote(filepath.Join(o.LogDir, "verify.log")))
	}
	if chain != "" {
		// sshd expands %u and the like inside this word as it did in the original line.
		args = append(args, "--chain", argv.Quote(chain))
	}
	return "AuthorizedKeysCommand " + strings.Join(args, " ")
}

// DropInContent is the sshd_config drop-in for these options and chained command.
func DropInContent(o Options, chain string) string {
	o.fill()
	note := ""
	if chain != "" {
		note = "# Keys that are not opkssh certificates go on to the command that was configured before.\n"
	}
	return fmt.Sprintf(`# Written by "opkssh server install"; "opkssh server uninstall" removes it.
# sshd asks opkssh about every public-key login; opkssh answers from %s.
%s%s
AuthorizedKeysCommandUser %s
`, filepath.Join(o.ConfigDir, "policies.yaml"), note, AuthorizedKeysCommandLine(o, chain), o.VerifyUser)
}

func (in *installer) dropIn() error {
	want := []byte(DropInContent(in.o, in.chain))
	if old, err := os.ReadFile(in.o.DropIn); err == nil && bytes.Equal(old, want) {
		in.unchanged("%s is in place", in.o.DropIn)
		return nil
	}
	in.say("write the sshd drop-in %s:\n%s", in.o.DropIn, indent(string(want)))
	if in.o.DryRun {
		return nil
	}
	if err := in.mkdirs(filepath.Dir(in.o.DropIn), 0o755, 0, 0); err != nil {
		return err
	}
	return in.writeFile(in.o.DropIn, want, 0o644, 0, 0)
}

// validate runs sshd -t; on failure the drop-in is taken back so sshd keeps working.
func (in *installer) validate() error {
	if in.o.DryRun {
		in.say("check the configuration with %s -t -f %s", in.o.SSHD, in.o.SSHDConfig)
		return nil
	}
	out, err := exec.Command(in.o.SSHD, "-t", "-f", in.o.SSHDConfig).CombinedOutput()
	if err == nil {
		fmt.Fprintf(in.o.Out, "  ok: %s -t accepts the configuration\n", in.o.SSHD)
		return nil
	}
	restoreErr := in.undoFile(in.o.DropIn)
	for _, d := range in.disable {
		restoreErr = errors.Join(restoreErr, in.undoFile(d.File))
	}
	return errors.Join(fmt.Errorf("sshd -t rejected the configuration, so the drop-in was taken back: %v: %s", err, bytes.TrimSpace(out)), restoreErr)
}

func (in *installer) reload() error {
	return reloadSSHD(in.o, in.say)
}

// reloadSSHD asks a running sshd to reread its configuration.
func reloadSSHD(o Options, say func(string, ...any)) error {
	cmd := o.ReloadCommand
	if cmd == nil {
		if data, err := os.ReadFile("/run/sshd.pid"); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 && signal(pid, 0) == nil {
				say("reload sshd (SIGHUP to pid %d)", pid)
				if o.DryRun {
					return nil
				}
				return signal(pid, syscall.SIGHUP)
			}
		}
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			cmd = []string{"systemctl", "reload-or-restart", "ssh"}
		}
	}
	if cmd == nil {
		fmt.Fprintf(o.Out, "  note: no running sshd found; the configuration takes effect when sshd starts\n")
		return nil
	}
	say("reload sshd: %s", strings.Join(cmd, " "))
	if o.DryRun {
		return nil
	}
	if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("reloading sshd (%s): %v: %s", strings.Join(cmd, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// dir creates path with the mode and owner, or fixes an existing one's mode and owner.
func (in *installer) dir(path string, mode os.FileMode, uid, gid int, what string) error {
	fi, err := os.Stat(path)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", path)
		}
		return in.ensureMode(path, mode, uid, gid)
	}
	in.say("create %s (%s, %s)", path, what, ownerText(mode, uid, gid, in.o.VerifyUser))
	if in.o.DryRun {
		return nil
	}
	return in.mkdirs(path, mode, uid, gid)
}

func (in *installer) mkdirs(path string, mode os.FileMode, uid, gid int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := in.mkdirs(filepath.Dir(path), 0o755, 0, 0); err != nil {
		return err
	}
	if err := os.Mkdir(path, mode); err != nil {
		return err
	}
	in.st.CreatedPaths = append(in.st.CreatedPaths, path)
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Chown(path, uid, max(gid, 0))
}

// ensureMode fixes mode and owner of an existing path.
func (in *installer) ensureMode(path string, mode os.FileMode, uid, gid int) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fuid, fgid, ok := fileowner.Of(fi); ok && fi.Mode().Perm() == mode && fuid == uid && (gid < 0 || fgid == gid) {
		in.unchanged("%s has %s", path, ownerText(mode, uid, gid, in.o.VerifyUser))
		return nil
	}
	in.say("set %s to %s", path, ownerText(mode, uid, gid, in.o.VerifyUser))
	if in.o.DryRun {
		return nil
	}
	in.recordOriginal(path, fi)
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Chown(path, uid, max(gid, 0))
}

// writeFile replaces path atomically, keeping a backup of a file that existed before install.
func (in *installer) writeFile(path string, data []byte, mode os.FileMode, uid, gid int) error {
	if _, err := os.Lstat(path); err == nil {
		if _, ok := in.st.Backups[path]; !ok && !in.created(path) {
			backup := fmt.Sprintf("%s.opkssh-backup-%s", path, in.o.Now().UTC().Format("20060102T150405Z"))
			if err := copyFile(path, backup); err != nil {
				return fmt.Errorf("backing up %s: %w", path, err)
			}
			in.st.Backups[path] = backup
			fmt.Fprintf(in.o.Out, "  backed up %s to %s\n", path, backup)
		}
	} else if !in.created(path) {
		in.st.CreatedPaths = append(in.st.CreatedPaths, path)
	}
	if err := atomicfile.WriteWith(path, data, atomicfile.Options{Mode: mode, Owner: &atomicfile.Owner{UID: uid, GID: max(gid, 0)}}); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// recordOriginal notes the owner and mode of a path install did not create, before it changes
// them; a later install keeps the first record, which is what the machine had.
func (in *installer) recordOriginal(path string, fi os.FileInfo) {
	if in.created(path) {
		return
	}
	if _, ok := in.st.Originals[path]; ok {
		return
	}
	uid, gid, ok := fileowner.Of(fi)
	if !ok {
		return
	}
	if in.st.Originals == nil {
		in.st.Originals = map[string]Original{}
	}
	in.st.Originals[path] = Original{UID: uid, GID: gid, Mode: fi.Mode().Perm()}
}

func (in *installer) created(path string) bool {
	for _, p := range in.st.CreatedPaths {
		if p == path {
			return true
		}
	}
	return false
}

// undoFile restores path's backup, or removes it if install created it.
func (in *installer) undoFile(path string) error {
	if b, ok := in.st.Backups[path]; ok {
		delete(in.st.Backups, path)
		return os.Rename(b, path)
	}
	if in.created(path) {
		return os.Remove(path)
	}
	return nil
}

// copyFile copies src to dst with src's mode and owner, so that restoring the copy restores both.
func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	return atomicfile.WriteWith(dst, data, atomicfile.Options{Like: fi})
}

func ownerText(mode os.FileMode, uid, gid int, verifyUser string) string {
	name := func(id int) string {
		if id == 0 {
			return "root"
		}
		return verifyUser
	}
	g := "root"
	if gid != 0 {
		g = verifyUser
	}
	return fmt.Sprintf("%s:%s %04o", name(uid), g, mode)
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n      ")
}

func readState(path string) (*State, error) {
	st := &State{Backups: map[string]string{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("install state %s: %w", path, err)
	}
	if st.Backups == nil {
		st.Backups = map[string]string{}
	}
	return st, nil
}

func writeState(path string, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// signal sends sig to the process pid; signal 0 only checks that it exists.
func signal(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	return p.Signal(sig)
}
