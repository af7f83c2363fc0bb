package sshconfig_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opkssh-team/opkssh/internal/sshconfig"
)

func TestBlock(t *testing.T) {
	got, err := sshconfig.Block(sshconfig.Options{Opkssh: "/usr/local/bin/opkssh", Provider: "corp"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# BEGIN opkssh (managed by "opkssh ssh-config --install", which replaces this block)
# Added by opkssh: refresh the certificate before connecting
Match host * exec "/usr/local/bin/opkssh login --if-needed --quiet corp"
# Ends the Match above: what follows applies to every host again.
Match all
# END opkssh
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	got, err = sshconfig.Block(sshconfig.Options{Opkssh: "/opt/my tools/100%/opkssh", Host: "*.example.com,!bastion", Agent: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `Match host *.example.com,!bastion exec "'/opt/my tools/100%%/opkssh' login --if-needed --quiet --agent"`+"\n") {
		t.Fatalf("quoting:\n%s", got)
	}
	for _, o := range []sshconfig.Options{
		{Opkssh: "opkssh"},
		{Opkssh: `/opt/it's/opkssh`},
		{Opkssh: `/opt/"x"/opkssh`},
		{Opkssh: "/opt/a\\b/opkssh"},
		{Opkssh: "/opt/a\nb/opkssh"},
		{Opkssh: "/bin/opkssh", Host: "a b"},
		{Opkssh: "/bin/opkssh", Host: `a"`},
		{Opkssh: "/bin/opkssh", Host: "a;b"},
		{Opkssh: "/bin/opkssh", Provider: "corp; rm -rf ~"},
		{Opkssh: "/bin/opkssh", Provider: "--issuer=x"},
	} {
		if b, err := sshconfig.Block(o); err == nil {
			t.Errorf("%+v was accepted:\n%s", o, b)
		}
	}
}

const block = "# BEGIN opkssh (x)\nMatch host * exec \"true\"\nMatch all\n# END opkssh\n"

func TestMerge(t *testing.T) {
	newBlock := "# BEGIN opkssh (y)\nMatch host a exec \"true\"\nMatch all\n# END opkssh\n"
	for _, tc := range []struct{ name, in, want string }{
		{"empty file", "", block},
		{"appended after a blank line", "Host a\n  User b\n", "Host a\n  User b\n\n" + block},
		{"missing final newline", "Host a", "Host a\n\n" + block},
		{"replaced in place", "Host a\n\n" + newBlock + "Host c\n", "Host a\n\n" + block + "Host c\n"},
		{"indented markers", "  # BEGIN opkssh old\n  Match host * exec \"x\"\n  # END opkssh\nHost z\n", block + "Host z\n"},
	} {
		got, err := sshconfig.Merge(tc.in, block)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	for _, broken := range []string{
		"# BEGIN opkssh\nHost a\n",
		"Host a\n# END opkssh\n",
		block + block,
		"# BEGIN opkssh\n# BEGIN opkssh\n# END opkssh\n",
	} {
		if _, err := sshconfig.Merge(broken, block); !errors.Is(err, sshconfig.ErrBrokenBlock) {
			t.Errorf("Merge(%q) = %v, want ErrBrokenBlock", broken, err)
		}
	}
	for _, orig := range []string{"", "Host a\n  User b\n", "Include other\n\nHost *\n  ForwardAgent no\n"} {
		merged, err := sshconfig.Merge(orig, block)
		if err != nil {
			t.Fatal(err)
		}
		back, err := sshconfig.Remove(merged)
		if err != nil || back != orig {
			t.Errorf("Remove(Merge(%q)) = %q, %v", orig, back, err)
		}
	}
}

func TestInstall(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".ssh", "config")
	res, err := sshconfig.Install(path, block)
	if err != nil || !res.Changed || res.Backup != "" || res.HadBlock {
		t.Fatalf("first install: %+v, %v", res, err)
	}
	mode(t, filepath.Dir(path), 0o700)
	mode(t, path, 0o600)

	res, err = sshconfig.Install(path, block)
	if err != nil || res.Changed || res.Backup != "" || !res.HadBlock {
		t.Fatalf("second install: %+v, %v", res, err)
	}
	if _, err := os.Stat(path + sshconfig.BackupSuffix); !os.IsNotExist(err) {
		t.Fatalf("an unchanged file got a backup: %v", err)
	}

	// An existing file: keep its lines, save it first, tighten the mode.
	orig := "Host *\n  ServerAliveInterval 30\n"
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = sshconfig.Install(path, block)
	if err != nil || !res.Changed || res.Backup != path+sshconfig.BackupSuffix {
		t.Fatalf("install into an existing file: %+v, %v", res, err)
	}
	content(t, res.Backup, orig)
	mode(t, res.Backup, 0o600)
	content(t, path, orig+"\n"+block)
	mode(t, path, 0o600)

	// A symlinked file (dotfile managers) is written through the link.
	real := filepath.Join(home, "dotfiles", "ssh_config")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, "linked", "config")
	os.MkdirAll(filepath.Dir(link), 0o700)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if res, err = sshconfig.Install(link, block); err != nil || res.Path != real {
		t.Fatalf("symlink: %+v, %v", res, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v", err)
	}
	content(t, real, orig+"\n"+block)

	// Uninstall restores the file as it was.
	if res, err = sshconfig.Uninstall(path); err != nil || !res.Changed {
		t.Fatalf("uninstall: %+v, %v", res, err)
	}
	content(t, path, orig)
	content(t, res.Backup, orig+"\n"+block)

	// A file with broken markers is left alone.
	broken := "# BEGIN opkssh\nHost a\n"
	os.WriteFile(path, []byte(broken), 0o600)
	if _, err := sshconfig.Install(path, block); !errors.Is(err, sshconfig.ErrBrokenBlock) || !strings.Contains(err.Error(), "fix the file by hand") {
		t.Fatalf("broken markers: %v", err)
	}
	content(t, path, broken)
}

// TestSSHRunsTheBlock checks the quoting against the real ssh: "ssh -G" runs Match exec (OpenSSH
// 9.2 does), and the command must reach a binary whose path holds a space, a "%" and a "$". A
// control block with a plain path first shows that this ssh runs Match exec at all, so a block that
// never runs its binary is a failure (a quoting bug looks exactly like that), not a skip.
func TestSSHRunsTheBlock(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no ssh client in CI")
		}
		t.Skip("no ssh client")
	}
	if !sshRunsMatchExec(t) {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh -G does not run Match exec even for a plain path")
		}
		t.Skip("this ssh does not run Match exec for -G")
	}
	dir := filepath.Join(t.TempDir(), "my tools %h $HOME")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" > '" + marker + "'\n"
	bin := filepath.Join(dir, "opkssh")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := sshconfig.Block(sshconfig.Options{Opkssh: bin, Provider: "corp"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("Host before\n  User x\n\n"+b+"User after\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", "-G", "-F", cfg, "somehost")
	cmd.Env = append(os.Environ(), "SHELL=/bin/sh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -G rejected the block: %v\n%s", err, out)
	}
	// "Match all" ends the block: the line after it applies to every host.
	if !strings.Contains(string(out), "\nuser after\n") {
		t.Errorf("ssh -G does not apply the line after the block:\n%s", out)
	}
	got, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("ssh ran the control Match exec but the block never ran %s (quoting?): %v\n%s", bin, err, b)
	}
	if string(got) != "login --if-needed --quiet corp\n" {
		t.Fatalf("the block ran the binary with %q", got)
	}
}

// sshRunsMatchExec reports whether "ssh -G" runs a Match exec command given by a plain path that
// needs no quoting.
func sshRunsMatchExec(t *testing.T) bool {
	t.Helper()
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	bin := filepath.Join(dir, "probe")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n: > "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("Match exec "+bin+"\n  User probe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", "-G", "-F", cfg, "somehost")
	cmd.Env = append(os.Environ(), "SHELL=/bin/sh")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh -G rejected the control block: %v\n%s", err, out)
	}
	_, err := os.Stat(marker)
	return err == nil
}

func mode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %#o, want %#o", path, fi.Mode().Perm(), want)
	}
}

func content(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

// A login that keeps its key where ssh does not look by itself names it in the block, for the
// login and for ssh.
func TestBlockKeyFile(t *testing.T) {
	got, err := sshconfig.Block(sshconfig.Options{Opkssh: "/usr/local/bin/opkssh", Provider: "corp", KeyFile: "/home/u/.ssh/id_opkssh", KeyType: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# BEGIN opkssh (managed by "opkssh ssh-config --install", which replaces this block)
# Added by opkssh: refresh the certificate before connecting
Match host * exec "/usr/local/bin/opkssh login --if-needed --quiet --key-type ed25519 --key-file /home/u/.ssh/id_opkssh corp"
# Use the key and certificate that this login keeps up to date
Match host *
  IdentityFile /home/u/.ssh/id_opkssh
  CertificateFile /home/u/.ssh/id_opkssh-cert.pub
# Ends the Match above: what follows applies to every host again.
Match all
# END opkssh
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	got, err = sshconfig.Block(sshconfig.Options{Opkssh: "/bin/opkssh", Host: "*.corp", KeyFile: "/home/my keys/100%/k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`Match host *.corp exec "/bin/opkssh login --if-needed --quiet --key-file '/home/my keys/100%%/k'"`,
		"Match host *.corp\n",
		`  IdentityFile "/home/my keys/100%%/k"`,
		`  CertificateFile "/home/my keys/100%%/k-cert.pub"`,
	} {
		if !strings.Contains(got, line) {
			t.Errorf("missing %q in:\n%s", line, got)
		}
	}
	for _, o := range []sshconfig.Options{
		{Opkssh: "/bin/opkssh", KeyFile: "id_opkssh"},
		{Opkssh: "/bin/opkssh", KeyFile: `/home/"u"/k`},
		{Opkssh: "/bin/opkssh", KeyType: "ed 25519"},
	} {
		if _, err := sshconfig.Block(o); err == nil {
			t.Errorf("Block(%+v) accepted", o)
		}
	}
}
