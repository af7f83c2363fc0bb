package commands

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// The ssh-agent side of login and logout.

// dialAgent connects to the agent at sock (SSH_AUTH_SOCK) and says what to do when there is none.
func dialAgent(sock string) (*sshagent.Conn, error) {
	conn, err := sshagent.Dial(sock)
	switch {
	case errors.Is(err, sshagent.ErrNoSocket):
		return nil, errors.New(`no ssh-agent: SSH_AUTH_SOCK is not set. Start one with eval "$(ssh-agent)", or log in without --agent`)
	case err != nil:
		return nil, fmt.Errorf(`%v. Is the agent still running? Start one with eval "$(ssh-agent)"`, err)
	}
	return conn, nil
}

// addToAgent puts the key and certificate into the agent for lifetime, replacing earlier opkssh
// identities, and says so.
func addToAgent(out io.Writer, sock string, key crypto.PrivateKey, cert *ssh.Certificate, comment string, lifetime time.Duration) error {
	conn, err := dialAgent(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	removed, err := sshagent.Add(conn, key, cert, comment, lifetime)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Added %s to the ssh-agent for %s (until the certificate expires).\n", comment, shortDuration(lifetime))
	printRemovedFromAgent(out, removed)
	return nil
}

// loadIntoAgent adds the valid key and certificate files at keyPath to the agent unless it holds
// them already, e.g. after the agent was restarted.
func loadIntoAgent(out io.Writer, sock, keyPath string) error {
	cert, err := sshcert.ReadCertFile(sshcert.CertPath(keyPath))
	if err != nil {
		return err
	}
	conn, err := dialAgent(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	if held, err := sshagent.Holds(conn, cert); err != nil || held {
		return err
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	key, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return fmt.Errorf("reading %s to add it to the ssh-agent: %w", keyPath, err)
	}
	st := certstatus.Of(cert, time.Now(), 0)
	removed, err := sshagent.Add(conn, key, cert, sshagent.CommentPrefix+st.Identity, st.Remaining)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Added %s%s from %s to the ssh-agent for %s.\n", sshagent.CommentPrefix, st.Identity, keyPath, shortDuration(st.Remaining))
	printRemovedFromAgent(out, removed)
	return nil
}

// agentStatus is the status of the best opkssh certificate in the agent.
func agentStatus(sock string, now time.Time, minRemaining time.Duration) (certstatus.Status, error) {
	conn, err := dialAgent(sock)
	if err != nil {
		return certstatus.Status{}, err
	}
	defer conn.Close()
	ids, err := sshagent.List(conn)
	if err != nil {
		return certstatus.Status{}, err
	}
	var all []certstatus.Status
	for _, id := range ids {
		if id.Cert != nil {
			st := certstatus.Of(id.Cert, now, minRemaining)
			st.Path = "ssh-agent " + sock
			all = append(all, st)
		}
	}
	return certstatus.Best(all), nil
}

func printRemovedFromAgent(out io.Writer, removed []sshagent.Identity) {
	for _, id := range removed {
		what := "key"
		if id.Cert != nil {
			what = "certificate"
		}
		fmt.Fprintf(out, "Removed the %s %s (%s) from the ssh-agent.\n", what, id.Comment, id.Fingerprint)
	}
}
