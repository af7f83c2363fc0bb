package verifier

import (
	"crypto"

	"golang.org/x/crypto/ssh"
)

func sshSigner(k crypto.Signer) (ssh.Signer, error) { return ssh.NewSignerFromSigner(k) }
