package sshcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// resign signs cert again with its own key after the test changed it.
func resign(t *testing.T, cert *ssh.Certificate, key *ecdsa.PrivateKey) string {
	t.Helper()
	s, err := ssh.NewSignerFromSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.SignCert(rand.Reader, s); err != nil {
		t.Fatal(err)
	}
	return b64(cert)
}

// Certificates the holder restricted are sshd's to enforce: Parse accepts them. A critical option
// sshd does not know makes sshd refuse the certificate, and Parse too.
func TestParseCriticalOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want string // "" accepted, else part of the error
	}{
		{map[string]string{OptionForceCommand: "/usr/bin/backup --daily"}, ""},
		{map[string]string{OptionSourceAddress: "10.0.0.0/8,192.0.2.7"}, ""},
		{map[string]string{OptionVerifyRequired: ""}, ""},
		{map[string]string{OptionForceCommand: "true", OptionSourceAddress: "::1/128", OptionVerifyRequired: ""}, ""},
		{map[string]string{"no-such-option": ""}, `unsupported critical option "no-such-option"`},
		{map[string]string{OptionForceCommand: "true", "permit-pty": ""}, `unsupported critical option "permit-pty"`},
	} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c, _ := newCert(t, Params{Signer: key, ValidBefore: t0.Add(time.Hour)})
		c.CriticalOptions = tc.opts
		_, err := Parse(c.Type(), resign(t, c, key), t0)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: refused: %v", tc.opts, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: Parse = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestNewRestricted(t *testing.T) {
	c, b := newCert(t, Params{ForceCommand: "echo hi", SourceAddress: []string{"10.0.0.0/8", "192.0.2.7"}, ValidBefore: t0.Add(time.Hour)})
	got, err := Parse(c.Type(), b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.CriticalOptions[OptionForceCommand] != "echo hi" || got.CriticalOptions[OptionSourceAddress] != "10.0.0.0/8,192.0.2.7" || len(got.CriticalOptions) != 2 {
		t.Fatalf("critical options %q", got.CriticalOptions)
	}
	// A forced command permits a pty but no forwarding and no ~/.ssh/rc.
	for _, e := range []string{"permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc"} {
		if _, ok := got.Extensions[e]; ok {
			t.Errorf("a forced-command certificate permits %s", e)
		}
	}
	if _, ok := got.Extensions["permit-pty"]; !ok {
		t.Error("a forced-command certificate does not permit a pty")
	}
	if d := Describe(got); d.CriticalOptions[OptionForceCommand] != "echo hi" {
		t.Errorf("Describe critical options %q", d.CriticalOptions)
	}

	// Only the source address: an ordinary interactive certificate otherwise.
	c, _ = newCert(t, Params{SourceAddress: []string{"127.0.0.1"}})
	if _, ok := c.Extensions["permit-port-forwarding"]; !ok || len(c.CriticalOptions) != 1 {
		t.Errorf("source-address only: options %q, extensions %q", c.CriticalOptions, c.Extensions)
	}
	// No restriction: no critical options at all, as before.
	c, _ = newCert(t, Params{})
	if len(c.CriticalOptions) != 0 || len(c.Extensions) != 6 {
		t.Errorf("unrestricted: options %q, extensions %q", c.CriticalOptions, c.Extensions)
	}
}

func TestParseSourceAddress(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":                  "10.0.0.0/8",
		"10.0.0.0/8, 192.0.2.7":       "10.0.0.0/8,192.0.2.7",
		"2001:db8::/32,::1":           "2001:db8::/32,::1",
		"127.0.0.1/32":                "127.0.0.1/32",
		"10.1.2.3/8":                  `"10.1.2.3/8" has host bits set; the block is 10.0.0.0/8`,
		"10.0.0.0/33":                 `"10.0.0.0/33" is neither`,
		"example.com":                 `"example.com" is neither`,
		"10.0.0.0/8,":                 "empty entry",
		"":                            "empty entry",
		"fe80::1%eth0":                `"fe80::1%eth0" is neither`,
		"10.0.0.0/8,not-an-address/8": `"not-an-address/8" is neither`,
	} {
		got, err := ParseSourceAddress(in)
		if err != nil {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParseSourceAddress(%q) = %v, want %q", in, err, want)
			}
			continue
		}
		if strings.Join(got, ",") != want {
			t.Errorf("ParseSourceAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
