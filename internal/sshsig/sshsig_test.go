package sshsig

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// keygen makes a key with ssh-keygen, and a certificate of it signed by itself.
func keygen(t *testing.T, dir, typ string) (keyPath string, signer ssh.Signer, cert *ssh.Certificate) {
	t.Helper()
	keyPath = filepath.Join(dir, "id_"+typ)
	run(t, nil, "ssh-keygen", "-q", "-t", typ, "-N", "", "-C", "test", "-f", keyPath)
	run(t, nil, "ssh-keygen", "-q", "-s", keyPath, "-I", "self", "-n", "opkssh-wildcard", keyPath+".pub")
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if signer, err = ssh.ParsePrivateKey(pem); err != nil {
		t.Fatal(err)
	}
	certText, err := os.ReadFile(keyPath + "-cert.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(certText)
	if err != nil {
		t.Fatal(err)
	}
	return keyPath, signer, pub.(*ssh.Certificate)
}

func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSameBytesAsSSHKeygen: with Ed25519 (deterministic signatures) our signature file is the
// one ssh-keygen writes, for a plain key and for a certificate.
func TestSameBytesAsSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	keyPath, signer, cert := keygen(t, dir, "ed25519")
	msg := filepath.Join(dir, "msg")
	os.WriteFile(msg, []byte("hello, world\n"), 0o644)
	for _, tc := range []struct {
		name string
		f    string
		pub  ssh.PublicKey
	}{{"plain", keyPath, nil}, {"cert", keyPath + "-cert.pub", cert}} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(msg + ".sig")
			run(t, nil, "ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", tc.f, msg)
			want, err := os.ReadFile(msg + ".sig")
			if err != nil {
				t.Fatal(err)
			}
			s, err := Sign(rand.Reader, signer, tc.pub, "file", strings.NewReader("hello, world\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := Armor(s.Marshal()); !bytes.Equal(got, want) {
				t.Fatalf("our signature differs from ssh-keygen's:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestInteropBothWays signs with each tool and verifies with the other, for each key type.
func TestInteropBothWays(t *testing.T) {
	for _, typ := range []string{"ecdsa", "ed25519", "rsa"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			keyPath, signer, cert := keygen(t, dir, typ)
			msg := filepath.Join(dir, "msg")
			content := []byte("the message\n")
			os.WriteFile(msg, content, 0o644)

			// ssh-keygen signs, we verify.
			run(t, nil, "ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", keyPath+"-cert.pub", msg)
			armored, _ := os.ReadFile(msg + ".sig")
			s, err := ParseArmored(armored)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := s.PublicKey.(*ssh.Certificate); !ok {
				t.Fatalf("embedded key is a %T, want the certificate", s.PublicKey)
			}
			if err := s.Verify(bytes.NewReader(content), "file"); err != nil {
				t.Fatalf("verifying ssh-keygen's signature: %v", err)
			}
			if err := s.Verify(bytes.NewReader(append(content, 'x')), "file"); !errors.Is(err, ErrVerify) {
				t.Fatalf("tampered message: %v", err)
			}
			if err := s.Verify(bytes.NewReader(content), "git"); !errors.Is(err, ErrVerify) {
				t.Fatalf("wrong namespace: %v", err)
			}

			// We sign, ssh-keygen verifies (check-novalidate and verify with the cert-authority).
			ours, err := Sign(rand.Reader, signer, cert, "file", bytes.NewReader(content))
			if err != nil {
				t.Fatal(err)
			}
			sigPath := filepath.Join(dir, "ours.sig")
			os.WriteFile(sigPath, Armor(ours.Marshal()), 0o644)
			out := run(t, content, "ssh-keygen", "-Y", "check-novalidate", "-n", "file", "-s", sigPath)
			if !strings.Contains(out, "Good \"file\" signature") {
				t.Fatalf("check-novalidate: %s", out)
			}
			pubText, _ := os.ReadFile(keyPath + ".pub")
			allowed := filepath.Join(dir, "allowed")
			os.WriteFile(allowed, []byte("opkssh-wildcard cert-authority "+string(pubText)), 0o644)
			out = run(t, content, "ssh-keygen", "-Y", "verify", "-n", "file", "-f", allowed, "-I", "opkssh-wildcard", "-s", sigPath)
			if !strings.Contains(out, "Good \"file\" signature for opkssh-wildcard") {
				t.Fatalf("verify: %s", out)
			}
			cmd := exec.Command("ssh-keygen", "-Y", "check-novalidate", "-n", "file", "-s", sigPath)
			cmd.Stdin = strings.NewReader("tampered\n")
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("ssh-keygen accepted our signature over another message: %s", out)
			}
		})
	}
}

func TestSignRefusesForeignCertificate(t *testing.T) {
	dir := t.TempDir()
	_, signer, _ := keygen(t, dir, "ed25519")
	_, _, other := keygen(t, t.TempDir(), "ed25519")
	if _, err := Sign(rand.Reader, signer, other, "file", strings.NewReader("x")); err == nil {
		t.Fatal("signed with a certificate of another key")
	}
	if _, err := Sign(rand.Reader, signer, nil, "", strings.NewReader("x")); err == nil {
		t.Fatal("signed with an empty namespace")
	}
}

func TestParseRejects(t *testing.T) {
	_, signer, _ := keygen(t, t.TempDir(), "ed25519")
	s, err := Sign(rand.Reader, signer, nil, "file", strings.NewReader("m"))
	if err != nil {
		t.Fatal(err)
	}
	good := s.Marshal()
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":       nil,
		"magic":       append([]byte("SSHSIH"), good[6:]...),
		"version":     append(append([]byte("SSHSIG"), 0, 0, 0, 2), good[10:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(append([]byte{}, good...), 0),
		"huge length": append([]byte("SSHSIG\x00\x00\x00\x01"), 0xff, 0xff, 0xff, 0xff),
	}
	for name, blob := range cases {
		if _, err := Parse(blob); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	bad := *s
	bad.HashAlg = "md5"
	if _, err := Parse(bad.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Errorf("md5: %v", err)
	}
	bad = *s
	bad.Namespace = ""
	if _, err := Parse(bad.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty namespace: %v", err)
	}
	for name, text := range map[string]string{
		"no armor":   "hello",
		"no end":     beginArmor + "\nAAAA\n",
		"bad b64":    beginArmor + "\n!!!!\n" + endArmor + "\n",
		"two":        string(Armor(good)) + string(Armor(good)),
		"not sshsig": beginArmor + "\nAAAA\n" + endArmor + "\n",
	} {
		if _, err := ParseArmored([]byte(text)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// CRLF and surrounding text are tolerated.
	crlf := strings.ReplaceAll(string(Armor(good)), "\n", "\r\n")
	if _, err := ParseArmored([]byte("prefix\r\n" + crlf + "suffix")); err != nil {
		t.Errorf("CRLF armor: %v", err)
	}
}
