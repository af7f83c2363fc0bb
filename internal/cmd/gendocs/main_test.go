package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	out := t.TempDir()
	if err := run(out, "2026-01-02"); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(out, "man", "man1", "opkssh-provider-remove.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH OPKSSH-PROVIDER-REMOVE 1 "2026-01-02"`,
		".SH NAME\nopkssh\\-provider\\-remove \\- Remove a provider from the configuration file\n",
		".SH SYNOPSIS\n.B opkssh provider remove NAME\n",
		".SH EXAMPLES\n",
		".BR opkssh\\-provider (1)\n",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("opkssh-provider-remove.1 lacks %q:\n%s", want, page)
		}
	}
	for _, name := range []string{"opkssh.1", "opkssh-login.1", "opkssh-verify.1", "opkssh-server-install.1"} {
		data, err := os.ReadFile(filepath.Join(out, "man", "man1", name))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, r := range line {
				if r > 0x7e {
					t.Errorf("%s:%d: non-ASCII %q left unescaped", name, i+1, r)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(out, "man", "man1", "opkssh-help.1")); err == nil {
		t.Error("a page for the help command")
	}
	for name, want := range map[string]string{"opkssh.bash": "__start_opkssh", "_opkssh": "#compdef opkssh", "opkssh.fish": "complete -c opkssh"} {
		data, err := os.ReadFile(filepath.Join(out, "completions", name))
		if err != nil || !strings.Contains(string(data), want) {
			t.Errorf("completions/%s: %v, lacks %q", name, err, want)
		}
	}
}
