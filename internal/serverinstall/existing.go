package serverinstall

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opkssh-team/opkssh/internal/argv"
	"github.com/opkssh-team/opkssh/internal/fileowner"
)

// An existing AuthorizedKeysCommand. sshd runs a single AuthorizedKeysCommand, and keeps the
// first value it reads of each keyword, so one that a server already has (SSSD's
// sss_ssh_authorizedkeys, EC2 Instance Connect) either overrides opkssh's drop-in or is overridden
// by it, silently. Install therefore reads the sshd configuration (sshd_config and what it
// includes, in sshd's order) before it changes anything, explains what it found, and goes on
// only when the administrator chose:
//
//   - --chain-existing: opkssh's line passes every key that is not an opkssh certificate to the
//     existing command (verify --chain), so its users keep logging in;
//   - --replace-existing: opkssh's line replaces it.
//
// Either way, an existing AuthorizedKeysCommand or AuthorizedKeysCommandUser that sshd would read
// before opkssh's drop-in is commented out in its file (kept in a backup that uninstall restores);
// one read after the drop-in is left alone, since the drop-in overrides it and uninstall's removal
// of the drop-in brings it back.

// keyDef is one AuthorizedKeysCommand or AuthorizedKeysCommandUser line of the sshd configuration.
type keyDef struct {
	File, Keyword, Value string
	Line                 int
	InMatch              bool // inside a Match block: applies to some connections only
	BeforeDropIn         bool // read before opkssh's drop-in, so it wins over the drop-in
}

func (d keyDef) String() string {
	return fmt.Sprintf("%s:%d: %s %s", d.File, d.Line, d.Keyword, d.Value)
}

// configScan is what scanning the sshd configuration found, other than opkssh's own drop-in.
type configScan struct {
	defs []keyDef
}

// command returns the AuthorizedKeysCommand that applies to every connection, if there is one
// that is not opkssh's.
func (s configScan) command() (keyDef, bool) {
	for _, d := range s.defs {
		if d.Keyword == "authorizedkeyscommand" && !d.InMatch && !strings.EqualFold(d.Value, "none") {
			return d, true
		}
	}
	return keyDef{}, false
}

// user returns the AuthorizedKeysCommandUser that goes with cmd: the first global one.
func (s configScan) user() string {
	for _, d := range s.defs {
		if d.Keyword == "authorizedkeyscommanduser" && !d.InMatch {
			return d.Value
		}
	}
	return ""
}

// scanSSHDConfig reads config and the files it includes, as sshd does, and collects the
// AuthorizedKeysCommand and AuthorizedKeysCommandUser lines outside dropIn, noting which are read
// before dropIn (whether or not dropIn exists yet).
func scanSSHDConfig(config, dropIn string) (configScan, error) {
	sc := &scanner{base: filepath.Dir(config), dropIn: dropIn}
	err := sc.file(config, 0)
	return configScan{defs: sc.defs}, err
}

type scanner struct {
	base, dropIn string
	defs         []keyDef
	seenDropIn   bool
}

func (sc *scanner) file(path string, depth int) error {
	if depth > 16 {
		return fmt.Errorf("%s: Include nested too deeply", path)
	}
	if path == sc.dropIn {
		sc.seenDropIn = true
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // sshd -t reports a missing sshd_config later
		}
		return fmt.Errorf("reading the sshd configuration: %w", err)
	}
	inMatch := false
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 1<<20)
	for n := 1; s.Scan(); n++ {
		kw, rest := splitKeyword(s.Text())
		switch kw {
		case "match":
			inMatch = !strings.EqualFold(strings.TrimSpace(rest), "all")
		case "include":
			words, err := argv.Split(rest)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", path, n, err)
			}
			for _, w := range words {
				if err := sc.include(w, depth); err != nil {
					return err
				}
			}
		case "authorizedkeyscommand", "authorizedkeyscommanduser":
			sc.defs = append(sc.defs, keyDef{File: path, Line: n, Keyword: kw, Value: rest, InMatch: inMatch, BeforeDropIn: !sc.seenDropIn})
		}
	}
	return s.Err()
}

// include reads the files a pattern names in name order; opkssh's drop-in counts as present.
func (sc *scanner) include(pattern string, depth int) error {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(sc.base, pattern)
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Errorf("sshd_config Include %s: %v", pattern, err)
	}
	if ok, _ := filepath.Match(pattern, sc.dropIn); ok && !slices.Contains(files, sc.dropIn) {
		files = append(files, sc.dropIn)
	}
	slices.Sort(files)
	for _, f := range files {
		if err := sc.file(f, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// splitKeyword returns a configuration line's keyword in lower case and the rest, trimmed; ""
// for blank and comment lines. sshd also accepts keyword=value.
func splitKeyword(line string) (string, string) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", ""
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), ""
	}
	rest := strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	return strings.ToLower(line[:i]), strings.TrimSpace(rest)
}

// existing is install's first step: find another AuthorizedKeysCommand and say what happens to it.
// It decides in.chain, the command opkssh's line will pass other keys to, and in.disable, the
// lines to comment out.
func (in *installer) existing() (err error) {
	defer func() {
		if err == nil {
			in.st.Chain = in.chain // recorded, so that a later install keeps the chain
		}
	}()
	scan, err := scanSSHDConfig(in.o.SSHDConfig, in.o.DropIn)
	if err != nil {
		return err
	}
	cmd, found := scan.command()
	if found && isOpkssh(cmd.Value) {
		found = false // an older opkssh line elsewhere: replacing it is what install is for
	}
	if !found {
		if in.st.Chain != "" {
			// Chained by an earlier install, whose disabling of the command hides it now.
			in.chain = in.st.Chain
			in.unchanged("keys that are not opkssh certificates go on to %s (chained by an earlier install)", in.chain)
		}
		in.disable = beforeDropIn(scan)
		return nil
	}
	if in.st.Chain == cmd.Value && !in.o.ReplaceExisting {
		in.chain = cmd.Value
		in.disable = beforeDropIn(scan)
		in.unchanged("keys that are not opkssh certificates go on to %s (chained)", in.chain)
		return nil
	}
	user := scan.user()
	fmt.Fprintf(in.o.Out, "  found an AuthorizedKeysCommand already in use:\n      %s\n", cmd)
	if user != "" {
		fmt.Fprintf(in.o.Out, "      (run as AuthorizedKeysCommandUser %s)\n", user)
	}
	fmt.Fprintf(in.o.Out, "  sshd runs only one AuthorizedKeysCommand (the first one it reads). %s\n", knownCommand(cmd.Value))
	chained := AuthorizedKeysCommandLine(in.o, cmd.Value)
	switch {
	case in.o.ChainExisting && in.o.ReplaceExisting:
		return fmt.Errorf("--chain-existing and --replace-existing exclude each other")
	case in.o.ChainExisting:
		if msg := chainable(cmd.Value); msg != "" {
			return fmt.Errorf("cannot chain %q: %s; use --replace-existing, or change it first", cmd.Value, msg)
		}
		in.chain = cmd.Value
		fmt.Fprintf(in.o.Out, "  chaining it: opkssh answers for opkssh certificates and passes every other key to it:\n      %s\n", chained)
		if user != "" && user != in.o.VerifyUser {
			fmt.Fprintf(in.o.Out, "  note: it will run as %s, not %s; check that it works as that user\n", in.o.VerifyUser, user)
		}
	case in.o.ReplaceExisting:
		fmt.Fprintf(in.o.Out, "  replacing it: only opkssh certificates will log in by AuthorizedKeysCommand\n")
	default:
		return fmt.Errorf("an AuthorizedKeysCommand is already configured (%s); nothing was changed.\n"+
			"Re-run with --chain-existing to keep it for keys that are not opkssh certificates, so that sshd runs:\n  %s\n"+
			"or with --replace-existing to replace it (add --dry-run to see every change first)", cmd, chained)
	}
	in.disable = beforeDropIn(scan)
	return nil
}

// beforeDropIn returns the global AuthorizedKeysCommand and AuthorizedKeysCommandUser lines that
// sshd reads before opkssh's drop-in, which would win over it: a foreign command (once chained or
// replaced), an older opkssh line, "AuthorizedKeysCommand none", or another user.
func beforeDropIn(scan configScan) []keyDef {
	var out []keyDef
	for _, d := range scan.defs {
		if d.BeforeDropIn && !d.InMatch {
			out = append(out, d)
		}
	}
	return out
}

func isOpkssh(command string) bool {
	f := strings.Fields(command)
	return len(f) >= 2 && filepath.Base(f[0]) == "opkssh" && f[1] == "verify"
}

// chainable says why a command cannot be passed to verify --chain, or "".
func chainable(command string) string {
	words, err := argv.Split(command)
	switch {
	case err != nil:
		return err.Error()
	case len(words) == 0:
		return "it is empty"
	case !filepath.IsAbs(words[0]):
		return "it does not start with an absolute path"
	}
	return ""
}

// knownCommand explains what a well-known AuthorizedKeysCommand is for.
func knownCommand(command string) string {
	switch base := filepath.Base(strings.Fields(command)[0]); {
	case base == "sss_ssh_authorizedkeys":
		return "This one is SSSD's: it serves the public keys stored for users in LDAP, FreeIPA or Active Directory."
	case strings.HasPrefix(base, "eic_"):
		return "This one is EC2 Instance Connect's: it serves the short-lived keys that the AWS console and CLI push."
	}
	return "Its users log in with the keys it prints."
}

// disableLines comments out the lines that would win over opkssh's drop-in, keeping a backup of
// each file that uninstall restores.
func (in *installer) disableLines() error {
	byFile := map[string][]int{}
	var files []string
	for _, d := range in.disable {
		if byFile[d.File] == nil {
			files = append(files, d.File)
		}
		byFile[d.File] = append(byFile[d.File], d.Line)
	}
	for _, f := range files {
		in.say("comment out in %s, which sshd reads before the drop-in: lines %v (uninstall restores the file)", f, byFile[f])
		if in.o.DryRun {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		lines := strings.SplitAfter(string(data), "\n")
		for _, n := range byFile[f] {
			if n-1 < len(lines) {
				lines[n-1] = "# disabled by opkssh server install: " + lines[n-1]
			}
		}
		fi, err := os.Stat(f)
		if err != nil {
			return err
		}
		uid, gid := 0, 0
		if u, g, ok := fileowner.Of(fi); ok {
			uid, gid = u, g
		}
		if err := in.writeFile(f, []byte(strings.Join(lines, "")), fi.Mode().Perm(), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// checkEffective asks sshd which AuthorizedKeysCommand it ends up with, which also catches one
// given on sshd's command line (a service unit's -o), which no file shows. It only warns: the
// drop-in is valid, and doctor reports the same.
func (in *installer) checkEffective() error {
	if in.o.DryRun {
		return nil
	}
	out, err := exec.Command(in.o.SSHD, "-T", "-f", in.o.SSHDConfig, "-C", "user=root,host=localhost,addr=127.0.0.1").Output()
	if err != nil {
		return nil // sshd -t passed; -T may still need what a test set-up lacks
	}
	want := strings.TrimPrefix(AuthorizedKeysCommandLine(in.o, in.chain), "AuthorizedKeysCommand ")
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "authorizedkeyscommand "); ok {
			if v != want {
				fmt.Fprintf(in.o.Out, "  warning: sshd's effective AuthorizedKeysCommand is %q, not opkssh's: set elsewhere (sshd's command line?); run \"opkssh doctor\"\n", v)
			} else {
				fmt.Fprintf(in.o.Out, "  ok: sshd runs %s\n", v)
			}
			return nil
		}
	}
	return nil
}
