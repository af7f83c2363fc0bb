package sshcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/pem"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
)

func marshalKey(t testing.TB, k crypto.Signer, comment string) []byte {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(k, comment)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestKeyComment(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(ed, "opkssh:alice@example.com", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	full := marshalKey(t, ec, "opkssh:alice@example.com")
	block, _ := pem.Decode(full)
	truncated := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes[:len(block.Bytes)-40]})
	for _, c := range []struct {
		name, want string
		data       []byte
		ok         bool
	}{
		{"ecdsa p256", "opkssh:alice@example.com", full, true},
		{"ed25519", "opkssh:bob", marshalKey(t, ed, "opkssh:bob"), true},
		{"empty comment", "", marshalKey(t, ed, ""), true},
		{"someone's own comment", "me@laptop", marshalKey(t, ec, "me@laptop"), true},
		{"rsa: not a type opkssh makes", "", marshalKey(t, rk, "opkssh:x"), false},
		{"p384: not a type opkssh makes", "", marshalKey(t, ec384, "opkssh:x"), false},
		{"encrypted", "", pem.EncodeToMemory(encrypted), false},
		{"truncated", "", truncated, false},
		{"not PEM", "", []byte("opkssh:alice"), false},
		{"other PEM type", "", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: block.Bytes}), false},
	} {
		got, ok := keyComment(c.data)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: keyComment = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// A key opkssh wrote whose certificate the user deleted is still opkssh's: login may replace it and
// logout may remove it. A key with any other comment is not.
func TestOwnedByOpksshWithoutCertificate(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, _ := newCert(t, Params{Signer: ec})
	ours := filepath.Join(dir, "id_ecdsa")
	if err := WriteKeyPair(ours, ec, c, KeyCommentPrefix+"alice@example.com"); err != nil {
		t.Fatal(err)
	}
	os.Remove(CertPath(ours))
	if owned, err := OwnedByOpkssh(ours); err != nil || !owned {
		t.Fatalf("OwnedByOpkssh(own key, certificate deleted) = %v, %v; want true", owned, err)
	}
	if who, ok := OpksshKeyIdentity(ours); !ok || who != "alice@example.com" {
		t.Fatalf("OpksshKeyIdentity = %q, %v", who, ok)
	}
	if err := WriteKeyPair(ours, ec, c, KeyCommentPrefix+"alice@example.com"); err != nil {
		t.Fatalf("replacing own key without its certificate: %v", err)
	}

	// A public key file beside it: someone uses the key as their own.
	os.Remove(CertPath(ours))
	os.WriteFile(ours+".pub", []byte("ecdsa-sha2-nistp256 AAAA opkssh:alice@example.com\n"), 0o644)
	if owned, _ := OwnedByOpkssh(ours); owned {
		t.Fatal("OwnedByOpkssh = true with a .pub file beside the key")
	}
	os.Remove(ours + ".pub")
	// A FIFO where the key should be is never opened (it would block).
	fifo := filepath.Join(dir, "id_fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if owned, _ := OwnedByOpkssh(fifo); owned {
		t.Fatal("OwnedByOpkssh(FIFO) = true")
	}

	mine := filepath.Join(dir, "id_mine")
	os.WriteFile(mine, marshalKey(t, ec, "me@laptop"), 0o600)
	if owned, err := OwnedByOpkssh(mine); err != nil || owned {
		t.Fatalf("OwnedByOpkssh(user's key) = %v, %v; want false", owned, err)
	}
	// opkssh's comment but a certificate that is not opkssh's beside it: somebody else's files.
	os.WriteFile(CertPath(ours), []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n"), 0o644)
	if owned, _ := OwnedByOpkssh(ours); owned {
		t.Fatal("OwnedByOpkssh = true with a foreign file at the certificate path")
	}
}

// FuzzKeyComment checks two properties. The comment ssh.MarshalPrivateKey writes for a P-256 or
// Ed25519 key, whatever its bytes, is the comment keyComment reads back. Arbitrary input yields
// either no comment or one that the decoded key holds as a length-prefixed string.
func FuzzKeyComment(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(marshalKey(f, ec, "opkssh:alice@example.com"), "opkssh:alice@example.com")
	f.Add(marshalKey(f, ed, "opkssh:bob"), "")
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"), "\x00\xff")
	f.Fuzz(func(t *testing.T, data []byte, comment string) {
		for _, k := range []crypto.Signer{ec, ed} {
			if got, ok := keyComment(marshalKey(t, k, comment)); !ok || got != comment {
				t.Fatalf("%T key with comment %q read back as %q, %v", k, comment, got, ok)
			}
		}
		got, ok := keyComment(data)
		if !ok {
			if got != "" {
				t.Fatalf("no comment reported, but %q returned", got)
			}
			return
		}
		block, _ := pem.Decode(data)
		prefixed := binary.BigEndian.AppendUint32(nil, uint32(len(got)))
		if block == nil || !bytes.Contains(block.Bytes, append(prefixed, got...)) {
			t.Fatalf("comment %q is not a string of the key", got)
		}
	})
}
