package sshsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzParseArmored: any input parses to an error or to a signature that re-marshals to the
// same blob and whose verification returns (never panics).
func FuzzParseArmored(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromSigner(k)
	s, _ := Sign(rand.Reader, signer, nil, "file", strings.NewReader("seed"))
	f.Add(Armor(s.Marshal()))
	f.Add(s.Marshal())
	f.Add([]byte(beginArmor + "\nU1NIU0lHAAAAAQ==\n" + endArmor))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (*Signature, error){ParseArmored, Parse} {
			sig, err := parse(data)
			if err != nil {
				continue
			}
			blob := sig.Marshal()
			again, err := Parse(blob)
			if err != nil {
				t.Fatalf("re-parsing a parsed signature: %v", err)
			}
			if !bytes.Equal(again.Marshal(), blob) {
				t.Fatal("marshal is not stable")
			}
			_ = sig.Verify(strings.NewReader("seed"), sig.Namespace)
		}
	})
}
