package sshcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary %t/%k pairs to Parse and Describe: errors are fine, panics are not.
func FuzzParse(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := New(Params{Signer: k, PKToken: []byte("e30:e30:c2ln:e30:c2ln"), KeyID: "seed"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Type(), base64.StdEncoding.EncodeToString(c.Marshal()))
	// A restricted certificate, whose critical options Parse must read.
	r, err := New(Params{Signer: k, PKToken: []byte("e30:e30:c2ln:e30:c2ln"), KeyID: "seed",
		ForceCommand: "echo hi", SourceAddress: []string{"10.0.0.0/8", "::1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Type(), base64.StdEncoding.EncodeToString(r.Marshal()))
	f.Add("ssh-ed25519-cert-v01@openssh.com", "AAAAC3NzaC1lZDI1NTE5AAAAIA==")
	f.Add("ecdsa-sha2-nistp256", "")
	f.Fuzz(func(t *testing.T, keyType, b64 string) {
		cert, err := Parse(keyType, b64, time.Unix(1764500000, 0))
		if err != nil {
			return
		}
		_ = Describe(cert)
		_, _ = PKToken(cert)
	})
}

// FuzzDescribeToken covers the unverified PK token reader used by inspect.
func FuzzDescribeToken(f *testing.F) {
	f.Add([]byte("e30:e30:c2ln:e30:c2ln"))
	f.Add([]byte("eyJpc3MiOiJ4IiwiYXVkIjpbImEiXSwiaWF0IjotMX0:e30:a:b:c.d"))
	f.Fuzz(func(t *testing.T, raw []byte) { _, _ = describeToken(raw) })
}
