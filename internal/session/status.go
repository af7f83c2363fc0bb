package session

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// Status is the best state among the certificates of keyPaths at now (see certstatus).
func Status(keyPaths []string, now time.Time, minRemaining time.Duration) (certstatus.Status, error) {
	var all []certstatus.Status
	for _, p := range CertPaths(keyPaths) {
		st, err := certstatus.OfFile(p, now, minRemaining)
		if err != nil {
			return certstatus.Status{}, err
		}
		all = append(all, st)
	}
	return certstatus.Best(all), nil
}

// AgentStatus is the state of the best opkssh certificate among the agent's identities; where is
// how the status names the agent (its Path).
func AgentStatus(ids []sshagent.Identity, where string, now time.Time, minRemaining time.Duration) certstatus.Status {
	var all []certstatus.Status
	for _, id := range ids {
		if id.Cert != nil {
			st := certstatus.Of(id.Cert, now, minRemaining)
			st.Path = where
			all = append(all, st)
		}
	}
	return certstatus.Best(all)
}

// LoadIntoAgent adds the key at keyPath and its valid certificate to agent a, unless it holds
// them already (as after the agent restarted), for the certificate's remaining validity. It
// returns the login added (nil if none was needed) and the earlier opkssh identities it replaced.
func LoadIntoAgent(a agent.Agent, keyPath string, now time.Time) (*Login, []sshagent.Identity, error) {
	cert, err := sshcert.ReadCertFile(sshcert.CertPath(keyPath))
	if err != nil {
		return nil, nil, err
	}
	if held, err := sshagent.Holds(a, cert); err != nil || held {
		return nil, nil, err
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s to add it to the ssh-agent: %w", keyPath, err)
	}
	st := certstatus.Of(cert, now, 0)
	// ValidBefore is the end certstatus reckons, which for a certificate without one (from
	// another client) is its token's iat plus a day.
	l := &Login{Identity: st.Identity, Issuer: st.Issuer, Cert: cert, ValidBefore: now.Add(st.Remaining)}
	removed, err := sshagent.Add(a, key, cert, l.Comment(), st.Remaining)
	if err != nil {
		return nil, nil, err
	}
	return l, removed, nil
}

// AddToAgent puts l's key and certificate into agent a until the certificate expires, replacing
// earlier opkssh identities, which it returns.
func AddToAgent(a agent.Agent, l *Login, now time.Time) ([]sshagent.Identity, error) {
	return sshagent.Add(a, l.Key, l.Cert, l.Comment(), l.ValidBefore.Sub(now))
}
