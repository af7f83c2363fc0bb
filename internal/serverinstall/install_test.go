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
	got := DropInContent(Options{}, "")
	for _, want := range []string{"\nAuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t\n", "\nAuthorizedKeysCommandUser opkssh\n", "answers from /etc/opkssh/policies.yaml"} {
		if !strings.Contains(got, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, got)
		}
	}
}

// Every path that is not verify's default reaches the line, quoted as sshd splits it, and a
// chained command follows as one word.
func TestAuthorizedKeysCommandLine(t *testing.T) {
	o := Options{BinaryPath: "/opt/opk ssh/opkssh", ConfigDir: "/srv/opkssh", CacheDir: "/srv/cache", LogDir: "/srv/log", VerifyUser: "opk"}
	got := AuthorizedKeysCommandLine(o, `/usr/bin/sss_ssh_authorizedkeys %u "x y"`)
	want := `AuthorizedKeysCommand "/opt/opk ssh/opkssh" verify %u %k %t --policy /srv/opkssh/policies.yaml --cache-dir /srv/cache --log-file /srv/log/verify.log --chain "/usr/bin/sss_ssh_authorizedkeys %u \"x y\""`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if c := DropInContent(o, ""); !strings.Contains(c, "AuthorizedKeysCommandUser opk\n") || !strings.Contains(c, "answers from /srv/opkssh/policies.yaml") {
		t.Errorf("drop-in:\n%s", c)
	}
	o = Options{ConfigDir: "/etc/opk%u"}
	o.DryRun = true
	if err := Install(o); err == nil || !strings.Contains(err.Error(), "must not contain %") {
		t.Errorf("a %% in a path: %v", err)
	}
}
