// Package sshagent keeps opkssh's key and certificate in the user's ssh-agent.
//
// opkssh's identities are recognised by their comment, "opkssh:<who>": login gives the agent
// identity the same comment as the key and certificate files, so keys loaded by hand with
// "ssh-add ~/.ssh/id_ecdsa" are recognised too, and identities of other tools never are.
//
// Only one opkssh identity is kept: adding a certificate removes every other opkssh identity.
// ssh offers the agent's identities one after the other, and each expired certificate it offers
// uses up one of the server's MaxAuthTries (6 by default) before the valid one is tried. Each
// identity is added with a lifetime equal to the certificate's remaining validity, so the agent
// forgets the key at the moment servers would start refusing it anyway.
package sshagent

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// CommentPrefix starts the comment of every identity opkssh puts in the agent (the same comment
// as in its key files).
const CommentPrefix = sshcert.KeyCommentPrefix

// EnvSocket names the environment variable that holds the agent's socket path.
const EnvSocket = "SSH_AUTH_SOCK"

// ioTimeout bounds each conversation with the agent: a socket whose agent hangs must not hang
// "ssh host" (login runs from ssh's Match exec).
const ioTimeout = 10 * time.Second

// ErrNoSocket means SSH_AUTH_SOCK is not set: no agent is running for this session.
var ErrNoSocket = errors.New(EnvSocket + " is not set")

// Conn is a connection to a running agent.
type Conn struct {
	agent.ExtendedAgent
	Socket string // the socket path, for messages
	conn   net.Conn
}

// Dial connects to the agent listening on socket (the value of SSH_AUTH_SOCK). The connection
// must be used within ioTimeout.
func Dial(socket string) (*Conn, error) {
	if socket == "" {
		return nil, ErrNoSocket
	}
	c, err := net.DialTimeout("unix", socket, ioTimeout)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the ssh-agent at %s (%s): %w", socket, EnvSocket, err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &Conn{ExtendedAgent: agent.NewClient(c), Socket: socket, conn: c}, nil
}

// Close closes the connection; the agent keeps its identities.
func (c *Conn) Close() error { return c.conn.Close() }

// Identity is one opkssh identity held by an agent.
type Identity struct {
	Comment     string
	Fingerprint string           // SHA256 fingerprint of the key (of the certified key for a certificate)
	Cert        *ssh.Certificate // nil for a plain key
	key         *agent.Key
}

// IsOpkssh reports whether an agent identity's comment marks it as opkssh's.
func IsOpkssh(comment string) bool { return strings.HasPrefix(comment, CommentPrefix) }

// List returns the agent's opkssh identities, in the agent's order.
func List(a agent.Agent) ([]Identity, error) {
	keys, err := a.List()
	if err != nil {
		return nil, fmt.Errorf("listing the ssh-agent's identities: %w", err)
	}
	var ids []Identity
	for _, k := range keys {
		if !IsOpkssh(k.Comment) {
			continue
		}
		id := Identity{Comment: k.Comment, key: k}
		pub, err := ssh.ParsePublicKey(k.Blob)
		if err != nil {
			// The agent handed us a key type x/crypto does not know; it is still ours to remove.
			id.Fingerprint = "(unknown key type " + k.Format + ")"
			ids = append(ids, id)
			continue
		}
		if cert, ok := pub.(*ssh.Certificate); ok {
			id.Cert = cert
			pub = cert.Key
		}
		id.Fingerprint = ssh.FingerprintSHA256(pub)
		ids = append(ids, id)
	}
	return ids, nil
}

// Remove removes the agent's opkssh identities, except the one whose key or certificate is keep
// (nil to remove all), and returns those it removed.
func Remove(a agent.Agent, keep ssh.PublicKey) ([]Identity, error) {
	ids, err := List(a)
	if err != nil {
		return nil, err
	}
	var removed []Identity
	for _, id := range ids {
		if keep != nil && bytes.Equal(id.key.Blob, keep.Marshal()) {
			continue
		}
		if err := a.Remove(id.key); err != nil {
			return removed, fmt.Errorf("removing %s (%s) from the ssh-agent: %w", id.Comment, id.Fingerprint, err)
		}
		removed = append(removed, id)
	}
	return removed, nil
}

// Add puts key and its certificate into the agent for lifetime (rounded down to whole seconds),
// then removes every other opkssh identity and returns those. Adding first means a failure leaves
// the earlier identities in place. key is a private key as ssh.ParseRawPrivateKey returns it or a
// crypto.Signer from login.
func Add(a agent.Agent, key crypto.PrivateKey, cert *ssh.Certificate, comment string, lifetime time.Duration) ([]Identity, error) {
	if !IsOpkssh(comment) {
		return nil, fmt.Errorf("sshagent: comment %q does not start with %q", comment, CommentPrefix)
	}
	secs := lifetime / time.Second
	if secs < 1 {
		return nil, errors.New("the certificate has expired; nothing was added to the ssh-agent")
	}
	err := a.Add(agent.AddedKey{
		PrivateKey:   key,
		Certificate:  cert,
		Comment:      comment,
		LifetimeSecs: uint32(min(secs, math.MaxUint32)),
	})
	if err != nil {
		return nil, fmt.Errorf("the ssh-agent refused the key (%w); if it is locked, unlock it with \"ssh-add -X\"", err)
	}
	return Remove(a, cert)
}

// Holds reports whether the agent holds cert.
func Holds(a agent.Agent, cert *ssh.Certificate) (bool, error) {
	keys, err := a.List()
	if err != nil {
		return false, fmt.Errorf("listing the ssh-agent's identities: %w", err)
	}
	want := cert.Marshal()
	for _, k := range keys {
		if bytes.Equal(k.Blob, want) {
			return true, nil
		}
	}
	return false, nil
}
