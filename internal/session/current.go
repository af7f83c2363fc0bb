package session

import (
	"time"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// The current login: the one notion that "opkssh status", "login --if-needed" and "ssh-config"
// share, so that they never disagree. It is the best certificate (certstatus.Best: valid before
// expiring before expired, then the longest-lasting) among
//
//   - the key files opkssh may have written (Keys.Known: the default ones and the record's), or
//     only the one the user named (--key-file), or only those of the type the user named
//     (--key-type);
//   - opkssh's identities in the ssh-agent, where the caller looked (an --agent-only login lives
//     only there), unless the user named a key file.
//
// A certificate from another OP than the one asked for does not count. When the current login
// is not valid, the renewal or the new login goes where the current login is: its key file (whose
// key type it keeps), the agent for a login that lives only there, else the default key file.

// Query says which logins count.
type Query struct {
	KeyFile   string  // only this key file, named by the user
	KeyType   KeyType // only keys of this type; "" for any
	AgentOnly bool    // only the agent
	// Agent are the ssh-agent's identities and AgentName how to name the agent (e.g. "ssh-agent
	// $SSH_AUTH_SOCK"); nil when the caller did not look.
	Agent     []sshagent.Identity
	AgentName string
	Issuer    string // only logins from this OP count; "" for any
	Now       time.Time
	// MinRemaining is how long a certificate must remain valid to count as valid.
	MinRemaining time.Duration
}

// Current is the current login and where its renewal goes.
type Current struct {
	certstatus.Status // the best login; State Missing when there is none
	// InAgent says the login is a certificate in the ssh-agent; Key is its key file otherwise.
	InAgent bool
	Key     string
	// Looked names the places looked at: certificate files, and the agent.
	Looked []string
	// Target is the key file a renewal or a new login writes, "" when it goes into the agent
	// only; TargetType is the type of key a new login makes there.
	Target     string
	TargetType KeyType
}

// FindCurrent finds the current login (see above).
func FindCurrent(q Query) (Current, error) {
	var cur Current
	var statuses []certstatus.Status
	var keys []KnownKey
	if !q.AgentOnly {
		var err error
		if keys, err = candidates(q); err != nil {
			return cur, err
		}
	}
	fileBest := -1
	for _, k := range keys {
		st, err := certstatus.OfFile(sshcert.CertPath(k.Path), q.Now, q.MinRemaining)
		if err != nil {
			return cur, err
		}
		cur.Looked = append(cur.Looked, st.Path)
		if q.Issuer != "" && st.State != certstatus.Missing && st.Issuer != q.Issuer {
			st = certstatus.Status{State: certstatus.Missing, Path: st.Path}
		}
		statuses = append(statuses, st)
		if st.State != certstatus.Missing && (fileBest < 0 || certstatus.Better(st, statuses[fileBest])) {
			fileBest = len(statuses) - 1
		}
	}
	var inAgent certstatus.Status
	if q.Agent != nil && (q.KeyFile == "" || q.AgentOnly) {
		var ids []sshagent.Identity
		for _, id := range q.Agent {
			if id.Cert == nil {
				continue
			}
			if st := certstatus.Of(id.Cert, q.Now, 0); q.Issuer == "" || st.Issuer == q.Issuer {
				ids = append(ids, id)
			}
		}
		inAgent = AgentStatus(ids, q.AgentName, q.Now, q.MinRemaining)
		cur.Looked = append(cur.Looked, q.AgentName)
	}

	if fileBest >= 0 {
		cur.Status, cur.Key = statuses[fileBest], keys[fileBest].Path
	} else {
		cur.Status = certstatus.Status{State: certstatus.Missing}
	}
	if certstatus.Better(inAgent, cur.Status) {
		cur.Status, cur.InAgent, cur.Key = inAgent, true, ""
	}

	switch {
	case q.AgentOnly || cur.InAgent && fileBest < 0:
		cur.TargetType = orType(q.KeyType, ECDSA)
	case q.KeyFile != "":
		cur.Target = q.KeyFile
		cur.TargetType = orType(q.KeyType, existingType(q.KeyFile, ECDSA))
	case fileBest >= 0:
		k := keys[fileBest]
		cur.Target = k.Path
		cur.TargetType = orType(q.KeyType, existingType(k.Path, k.Type))
	default:
		t := orType(q.KeyType, ECDSA)
		home, err := UserKeys()
		if err != nil {
			return cur, err
		}
		cur.Target, cur.TargetType = home.KeyPath(t), t
	}
	return cur, nil
}

// candidates are the key files q lets count.
func candidates(q Query) ([]KnownKey, error) {
	if q.KeyFile != "" {
		return []KnownKey{{Path: q.KeyFile, Type: orType(q.KeyType, ECDSA)}}, nil
	}
	k, err := UserKeys()
	if err != nil {
		return nil, err
	}
	known, err := k.Known()
	if err != nil {
		return nil, err
	}
	if q.KeyType == "" {
		return known, nil
	}
	var keep []KnownKey
	for _, kk := range known {
		if existingType(kk.Path, kk.Type) == q.KeyType {
			keep = append(keep, kk)
		}
	}
	return keep, nil
}

// existingType is the type of the key certified beside keyPath, or def when there is no
// certificate to tell.
func existingType(keyPath string, def KeyType) KeyType {
	cert, err := sshcert.ReadCertFile(sshcert.CertPath(keyPath))
	if err != nil {
		return def
	}
	if cert.Key.Type() == "ssh-ed25519" {
		return Ed25519
	}
	return ECDSA
}

func orType(t, def KeyType) KeyType {
	if t != "" {
		return t
	}
	return def
}
