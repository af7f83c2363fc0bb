// Package sshconfig writes the block of ~/.ssh/config that makes ssh refresh the opkssh
// certificate before it connects:
//
//	# BEGIN opkssh (managed by "opkssh ssh-config --install", which replaces this block)
//	# Added by opkssh: refresh the certificate before connecting
//	Match host * exec "/usr/local/bin/opkssh login --if-needed --quiet corp"
//	# Ends the Match above: what follows applies to every host again.
//	Match all
//	# END opkssh
//
// How OpenSSH runs it (ssh_config(5) "Match exec"; observed with OpenSSH 9.2): while ssh reads
// its configuration, before it connects, it runs the command with "$SHELL -c" (/bin/sh when SHELL
// is unset) and stdin from /dev/null. The command's stdout never reaches ssh's stdout (9.2 joins
// it to ssh's stderr), so it cannot corrupt "ssh host cmd > file" or scp; its stderr is ssh's
// stderr, so a browser or device-code prompt reaches the user. The Match applies when the command
// exits 0; when the login fails, ssh goes on with the certificate it has, so the block never stops
// ssh by itself. ssh expands %-tokens (%h, %u, …) in the command, so a "%" in the path is written
// "%%". OpenSSH 9.2 runs Match exec for "ssh -G" as well, so tools that only query the
// configuration refresh the certificate too.
//
// The block's Match exec has no settings of its own: it is there for its side effect. A login
// that keeps a key where ssh does not look by itself (--key-file, e.g. because ~/.ssh/id_ecdsa is
// the user's own key) adds a second Match for the same hosts, without exec, that names the key
// and its certificate (IdentityFile, CertificateFile; both add to the user's own, they replace
// nothing). "Match all" closes the block, so that lines a user later adds below it are not made
// conditional on it.
package sshconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
)

// The lines that delimit the block. Install finds a block by these prefixes, so that a future
// wording of the first line still replaces an old block.
const (
	beginPrefix = "# BEGIN opkssh"
	endLine     = "# END opkssh"
	beginLine   = beginPrefix + ` (managed by "opkssh ssh-config --install", which replaces this block)`
)

// BackupSuffix is appended to the configuration file's name for the copy made before a change.
const BackupSuffix = ".opkssh-backup"

// Options describe the block.
type Options struct {
	Opkssh   string // absolute path of the opkssh binary the block runs
	Host     string // ssh_config pattern list for "Match host"; "*" if empty
	Provider string // provider name for "opkssh login"; the configuration's default if empty
	Agent    bool   // add --agent to the login command
	// KeyFile, if set, is the absolute path of the private key the login keeps up to date; the
	// block then also makes ssh use it (IdentityFile and CertificateFile), since ssh does not
	// look there by itself.
	KeyFile string
	KeyType string // add --key-type KeyType to the login command, if set
}

// Block returns the block for o, ending with a newline.
func Block(o Options) (string, error) {
	host := o.Host
	if host == "" {
		host = "*"
	}
	if err := checkHostPattern(host); err != nil {
		return "", err
	}
	bin, err := shellWord("opkssh path", o.Opkssh, "install opkssh elsewhere or pass --opkssh")
	if err != nil {
		return "", err
	}
	args := []string{bin, "login", "--if-needed", "--quiet"}
	if o.Agent {
		args = append(args, "--agent")
	}
	if o.KeyType != "" {
		if err := checkKeyType(o.KeyType); err != nil {
			return "", err
		}
		args = append(args, "--key-type", o.KeyType)
	}
	var identity []string
	if o.KeyFile != "" {
		key, err := shellWord("key file", o.KeyFile, "choose another --key-file")
		if err != nil {
			return "", err
		}
		args = append(args, "--key-file", key)
		identity = []string{
			"# Use the key and certificate that this login keeps up to date",
			"Match host " + host,
			"  IdentityFile " + configWord(o.KeyFile),
			"  CertificateFile " + configWord(o.KeyFile+"-cert.pub"),
		}
	}
	if o.Provider != "" {
		if err := checkProviderName(o.Provider); err != nil {
			return "", err
		}
		args = append(args, o.Provider)
	}
	command := strings.ReplaceAll(strings.Join(args, " "), "%", "%%")
	lines := []string{
		beginLine,
		"# Added by opkssh: refresh the certificate before connecting",
		fmt.Sprintf(`Match host %s exec "%s"`, host, command),
	}
	lines = append(lines, identity...)
	lines = append(lines,
		"# Ends the Match above: what follows applies to every host again.",
		"Match all",
		endLine,
	)
	return strings.Join(lines, "\n") + "\n", nil
}

// checkKeyType accepts the key types login takes; they need no quoting.
func checkKeyType(t string) error {
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("key type %q: use ecdsa or ed25519", t)
		}
	}
	return nil
}

// configWord writes a path that shellWord accepted as one ssh_config argument: ssh expands
// %-tokens in IdentityFile and CertificateFile, so "%" is doubled, and a path with spaces is
// double-quoted (it holds no double quote).
func configWord(path string) string {
	path = strings.ReplaceAll(path, "%", "%%")
	if strings.ContainsAny(path, " \t") {
		return `"` + path + `"`
	}
	return path
}

// checkHostPattern accepts an ssh_config pattern list ("*", "*.example.com,!bastion") that needs
// no quoting.
func checkHostPattern(p string) error {
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_*?!,:[]", r)
		if !ok {
			return fmt.Errorf("host pattern %q: use letters, digits and . - _ * ? ! , : [ ] only (a comma-separated ssh_config pattern list, no spaces)", p)
		}
	}
	if p == "" {
		return errors.New("host pattern is empty")
	}
	return nil
}

// checkProviderName accepts the names "opkssh provider add" accepts; they need no shell quoting.
func checkProviderName(name string) error {
	ok := len(name) <= 64
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		ok = ok && (alnum || i > 0 && strings.ContainsRune("._-", r))
	}
	if !ok {
		return fmt.Errorf("provider name %q must be letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// shellWord quotes an absolute path for "$SHELL -c" inside the double-quoted ssh_config argument:
// as it is when it holds only safe characters, else in single quotes. Quotes, backslashes and
// control characters cannot be written safely through both layers and are refused.
// what names the path in errors and fix says what to do instead.
func shellWord(what, path, fix string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s %q is not absolute", what, path)
	}
	plain := true
	for _, r := range path {
		switch {
		case r < 0x20 || r == 0x7f || r == '"' || r == '\'' || r == '\\':
			return "", fmt.Errorf("%s %q holds a quote, backslash or control character that cannot be written into ssh_config; %s", what, path, fix)
		case !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+,@:=%-", r)):
			plain = false
		}
	}
	if plain {
		return path, nil
	}
	return "'" + path + "'", nil
}

// ErrBrokenBlock means the file has a begin marker without an end marker, or several blocks:
// someone edited it by hand, and guessing where the block ends could delete their lines.
var ErrBrokenBlock = errors.New("opkssh block markers are broken")

// findBlock returns the line range [begin, end] of the opkssh block, or -1, -1.
func findBlock(lines []string) (int, int, error) {
	begin, end := -1, -1
	for i, l := range lines {
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, beginPrefix):
			if begin >= 0 {
				return 0, 0, fmt.Errorf("%w: a second %q line at line %d", ErrBrokenBlock, beginPrefix, i+1)
			}
			begin = i
		case t == endLine:
			if begin < 0 || end >= 0 {
				return 0, 0, fmt.Errorf("%w: %q at line %d without a %q line before it", ErrBrokenBlock, endLine, i+1, beginPrefix)
			}
			end = i
		}
	}
	if begin >= 0 && end < 0 {
		return 0, 0, fmt.Errorf("%w: %q at line %d has no %q line after it", ErrBrokenBlock, beginPrefix, begin+1, endLine)
	}
	return begin, end, nil
}

// Merge returns content with block in place of its opkssh block, or appended after a blank line
// when it has none.
func Merge(content, block string) (string, error) {
	lines := strings.SplitAfter(content, "\n")
	begin, end, err := findBlock(lines)
	if err != nil {
		return "", err
	}
	if begin >= 0 {
		return strings.Join(lines[:begin], "") + block + strings.Join(lines[end+1:], ""), nil
	}
	switch {
	case content == "":
		return block, nil
	case !strings.HasSuffix(content, "\n"):
		content += "\n"
	}
	return content + "\n" + block, nil
}

// Remove returns content without its opkssh block and the blank line Merge put before it.
func Remove(content string) (string, error) {
	lines := strings.SplitAfter(content, "\n")
	begin, end, err := findBlock(lines)
	if err != nil || begin < 0 {
		return content, err
	}
	if begin > 0 && strings.TrimSpace(lines[begin-1]) == "" {
		begin--
	}
	return strings.Join(lines[:begin], "") + strings.Join(lines[end+1:], ""), nil
}

// Result says what Install or Uninstall did.
type Result struct {
	Path     string // the file written (a symlink's target)
	Backup   string // where the previous content was saved; "" if there was none or nothing changed
	Changed  bool
	HadBlock bool // the file held an opkssh block before
}

// Install puts block into the ssh configuration file at path: in place of an earlier opkssh
// block, else at the end. It creates the directory (0700) and the file (0600) when missing, saves
// the previous content as path+BackupSuffix (0600), and writes the file atomically with mode 0600
// (what ssh requires at most is that others cannot write it). A symlinked file, as dotfile
// managers make, is written through: its target changes, the link stays.
func Install(path, block string) (Result, error) {
	return edit(path, func(content string) (string, error) { return Merge(content, block) })
}

// Uninstall removes the opkssh block from the file at path, with the same backup as Install.
func Uninstall(path string) (Result, error) {
	return edit(path, Remove)
}

func edit(path string, change func(string) (string, error)) (Result, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return Result{}, fmt.Errorf("%s is a symbolic link whose target cannot be used: %w", path, err)
		}
		path = target
	}
	res := Result{Path: path}
	old, err := os.ReadFile(path)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	if begin, _, err := findBlock(strings.SplitAfter(string(old), "\n")); err == nil && begin >= 0 {
		res.HadBlock = true
	}
	updated, err := change(string(old))
	if err != nil {
		return res, fmt.Errorf("%s: %w; fix the file by hand (opkssh changed nothing)", path, err)
	}
	if existed && bytes.Equal(old, []byte(updated)) || !existed && updated == "" {
		return res, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return res, err
	}
	if existed {
		res.Backup = path + BackupSuffix
		if err := atomicfile.Write(res.Backup, old, 0o600); err != nil {
			return res, fmt.Errorf("saving a backup of %s: %w (opkssh changed nothing)", path, err)
		}
	}
	if err := atomicfile.Write(path, []byte(updated), 0o600); err != nil {
		return res, err
	}
	res.Changed = true
	return res, nil
}
