package serverinstall

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sshdTree writes an sshd_config that includes sshd_config.d/*.conf, plus the given drop-ins.
func sshdTree(t *testing.T, o Options, main string, dropIns map[string]string) {
	t.Helper()
	writeOwned(t, o.SSHDConfig, "Include sshd_config.d/*.conf\n"+main, 0, 0, 0o644)
	for name, content := range dropIns {
		writeOwned(t, filepath.Join(filepath.Dir(o.DropIn), name), content, 0, 0, 0o644)
	}
}

func TestScanSSHDConfig(t *testing.T) {
	o := tempOptions(t, "opkssh")
	sshdTree(t, o, "AuthorizedKeysCommand /usr/bin/late %u\nMatch User bob\n  AuthorizedKeysCommand /usr/bin/bob\n", map[string]string{
		"50-sssd.conf":  "# SSSD\nAuthorizedKeysCommand=/usr/bin/sss_ssh_authorizedkeys %u\nAuthorizedKeysCommandUser nobody\n",
		"70-after.conf": "authorizedkeyscommand /usr/bin/after\n",
	})
	scan, err := scanSSHDConfig(o.SSHDConfig, o.DropIn)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range scan.defs {
		got = append(got, strings.TrimPrefix(d.String(), filepath.Dir(o.SSHDConfig)+"/")+map[bool]string{true: " (before)", false: ""}[d.BeforeDropIn]+map[bool]string{true: " (match)", false: ""}[d.InMatch])
	}
	want := []string{
		"sshd_config.d/50-sssd.conf:2: authorizedkeyscommand /usr/bin/sss_ssh_authorizedkeys %u (before)",
		"sshd_config.d/50-sssd.conf:3: authorizedkeyscommanduser nobody (before)",
		"sshd_config.d/70-after.conf:1: authorizedkeyscommand /usr/bin/after",
		"sshd_config:2: authorizedkeyscommand /usr/bin/late %u",
		"sshd_config:4: authorizedkeyscommand /usr/bin/bob (match)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cmd, ok := scan.command(); !ok || cmd.Value != "/usr/bin/sss_ssh_authorizedkeys %u" || scan.user() != "nobody" {
		t.Errorf("command %v %v, user %q", cmd, ok, scan.user())
	}
}

// An existing AuthorizedKeysCommand is explained and nothing is written until the administrator
// chooses; --chain-existing chains it (dry run first), comments out the lines that would win over
// the drop-in, and uninstall gives the file back as it was.
func TestExistingCommand(t *testing.T) {
	needRoot(t)
	if noSandbox != nil {
		t.Skipf("needs the sandbox: %v", noSandbox)
	}
	o := tempOptions(t, "nobody")
	sssd := "# SSSD\nAuthorizedKeysCommand /usr/bin/sss_ssh_authorizedkeys %u\nAuthorizedKeysCommandUser nobody\n"
	sshdTree(t, o, "", map[string]string{"50-sssd.conf": sssd})
	sssdPath := filepath.Join(filepath.Dir(o.DropIn), "50-sssd.conf")
	out := o.Out.(*bytes.Buffer)

	err := Install(o)
	if err == nil || !strings.Contains(err.Error(), "--chain-existing") || !strings.Contains(err.Error(), `--chain "/usr/bin/sss_ssh_authorizedkeys %u"`) {
		t.Fatalf("install without a choice: %v", err)
	}
	if !strings.Contains(out.String(), "50-sssd.conf:2: authorizedkeyscommand /usr/bin/sss_ssh_authorizedkeys %u") || !strings.Contains(out.String(), "SSSD's") {
		t.Errorf("no explanation:\n%s", out)
	}
	for _, p := range []string{o.BinaryPath, o.ConfigDir, o.DropIn} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s was written before the administrator chose", p)
		}
	}

	out.Reset()
	o.ChainExisting, o.DryRun = true, true
	if err := Install(o); err != nil {
		t.Fatal(err)
	}
	wantLine := `AuthorizedKeysCommand ` + o.BinaryPath + ` verify %u %k %t --policy ` + o.ConfigDir + `/policies.yaml --cache-dir ` + o.CacheDir + ` --log-file ` + o.LogDir + `/verify.log --chain "/usr/bin/sss_ssh_authorizedkeys %u"`
	if !strings.Contains(out.String(), wantLine) || !strings.Contains(out.String(), "would comment out in "+sssdPath) {
		t.Fatalf("dry run does not show the line %s:\n%s", wantLine, out)
	}
	if _, err := os.Stat(o.DropIn); err == nil {
		t.Fatal("dry run wrote the drop-in")
	}

	o.DryRun = false
	if err := Install(o); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	drop, _ := os.ReadFile(o.DropIn)
	if !strings.Contains(string(drop), wantLine+"\n") {
		t.Fatalf("drop-in:\n%s", drop)
	}
	disabled, _ := os.ReadFile(sssdPath)
	if strings.Contains(string(disabled), "\nAuthorizedKeysCommand") || !strings.Contains(string(disabled), "# disabled by opkssh server install: AuthorizedKeysCommandUser nobody") {
		t.Fatalf("the lines that win over the drop-in are still active:\n%s", disabled)
	}
	// Running install again keeps the chain, although the command is now commented out.
	out.Reset()
	o.ChainExisting = false
	if err := Install(o); err != nil {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(o.DropIn); !bytes.Equal(again, drop) {
		t.Fatalf("second install changed the drop-in:\n%s", again)
	}
	if err := Uninstall(o, true); err != nil {
		t.Fatal(err)
	}
	if back, _ := os.ReadFile(sssdPath); string(back) != sssd {
		t.Fatalf("uninstall did not restore %s:\n%s", sssdPath, back)
	}
	if _, err := os.Stat(o.DropIn); err == nil {
		t.Fatal("drop-in remains")
	}
}

// --replace-existing takes over a command read after the drop-in without touching its file.
func TestReplaceExistingAfterDropIn(t *testing.T) {
	needRoot(t)
	if noSandbox != nil {
		t.Skipf("needs the sandbox: %v", noSandbox)
	}
	o := tempOptions(t, "nobody")
	sshdTree(t, o, "AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %u %f\nAuthorizedKeysCommandUser ec2-instance-connect\n", nil)
	o.ReplaceExisting = true
	if err := Install(o); err != nil {
		t.Fatal(err)
	}
	out := o.Out.(*bytes.Buffer).String()
	if !strings.Contains(out, "EC2 Instance Connect") || !strings.Contains(out, "replacing it") || strings.Contains(out, "comment out") {
		t.Errorf("output:\n%s", out)
	}
	if main, _ := os.ReadFile(o.SSHDConfig); strings.Contains(string(main), "disabled") {
		t.Errorf("sshd_config was changed although the drop-in overrides it:\n%s", main)
	}
	if drop, _ := os.ReadFile(o.DropIn); strings.Contains(string(drop), "--chain") {
		t.Errorf("replace chained:\n%s", drop)
	}
	if err := Uninstall(o, true); err != nil {
		t.Fatal(err)
	}
}

// Lines read before the drop-in that would silently win over it are commented out even when no
// other command is configured: "AuthorizedKeysCommand none" and another AuthorizedKeysCommandUser.
func TestNoneBeforeDropIn(t *testing.T) {
	needRoot(t)
	if noSandbox != nil {
		t.Skipf("needs the sandbox: %v", noSandbox)
	}
	o := tempOptions(t, "nobody")
	early := "AuthorizedKeysCommand none\nAuthorizedKeysCommandUser root\n"
	sshdTree(t, o, "", map[string]string{"10-early.conf": early})
	if err := Install(o); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(o.DropIn), "10-early.conf")
	if got, _ := os.ReadFile(path); strings.Count(string(got), "# disabled by opkssh server install: ") != 2 {
		t.Fatalf("%s:\n%s", path, got)
	}
	if err := Uninstall(o, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != early {
		t.Fatalf("not restored:\n%s", got)
	}
}
