package commands

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opkssh-team/opkssh/internal/certstatus"
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
	return session.AgentStatus(ids, "ssh-agent "+sock, now, minRemaining), nil
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
