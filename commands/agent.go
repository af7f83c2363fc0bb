package commands

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshagent"
)

// The ssh-agent side of login and logout; what goes into the agent is session's business.

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

// addToAgent puts the login's key and certificate into the agent until the certificate expires,
// replacing earlier opkssh identities, and says so.
func addToAgent(out io.Writer, sock string, l *session.Login) error {
	conn, err := dialAgent(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	now := time.Now()
	removed, err := session.AddToAgent(conn, l, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Added %s to the ssh-agent for %s (until the certificate expires).\n", l.Comment(), shortDuration(l.ValidBefore.Sub(now)))
	printRemovedFromAgent(out, removed)
	return nil
}

// loadIntoAgent adds the valid key and certificate files at keyPath to the agent unless it holds
// them already, e.g. after the agent was restarted.
func loadIntoAgent(out io.Writer, sock, keyPath string) error {
	conn, err := dialAgent(sock)
	if err != nil {
		return err
	}
	defer conn.Close()
	now := time.Now()
	l, removed, err := session.LoadIntoAgent(conn, keyPath, now)
	if err != nil || l == nil {
		return err
	}
	fmt.Fprintf(out, "Added %s from %s to the ssh-agent for %s.\n", l.Comment(), keyPath, shortDuration(l.ValidBefore.Sub(now)))
	printRemovedFromAgent(out, removed)
	return nil
}

// agentIdentities lists the identities of the agent at sock for session.FindCurrent, with the
// agent's name for messages. When the agent is required (--agent-only) an agent that cannot be
// reached is an error; otherwise it holds no login, and nil says that no agent was looked at.
func agentIdentities(sock string, required bool) ([]sshagent.Identity, string, error) {
	if sock == "" && !required {
		return nil, "", nil
	}
	conn, err := dialAgent(sock)
	if err != nil {
		if required {
			return nil, "", err
		}
		return nil, "", nil
	}
	defer conn.Close()
	ids, err := sshagent.List(conn)
	if err != nil {
		if required {
			return nil, "", err
		}
		return nil, "", nil
	}
	if ids == nil {
		ids = []sshagent.Identity{}
	}
	return ids, "the ssh-agent at " + sock, nil
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
