package serverinstall

import (
	"strings"
	"testing"
)

func TestRelativePathsRefused(t *testing.T) {
	for _, o := range []Options{{BinaryPath: "bin/opkssh"}, {CacheDir: "cache"}, {DropIn: "60-opkssh.conf"}} {
		o.DryRun = true
		for name, run := range map[string]func() error{
			"install":   func() error { return Install(o) },
			"uninstall": func() error { return Uninstall(o, false) },
		} {
			if err := run(); err == nil || !strings.Contains(err.Error(), "must be an absolute path") {
				t.Errorf("%s with %+v: %v", name, o, err)
			}
		}
	}
}

func TestDropInContent(t *testing.T) {
	got := DropInContent("/usr/local/bin/opkssh", "opkssh")
	for _, want := range []string{"\nAuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t\n", "\nAuthorizedKeysCommandUser opkssh\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, got)
		}
	}
}
