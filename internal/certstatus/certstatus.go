// Package certstatus tells whether the workstation holds an opkssh certificate that will still
// be accepted for a while, so that "opkssh status" can answer scripts and "opkssh login
// --if-needed" (run by ssh's Match exec before each connection) can skip an unneeded login.
//
// It reads the certificate's own validity window, which login sets from the time of the login
// (sshcert.Window). Certificates made by other OpenPubkey clients have no end; for them the PK token's iat
// plus DefaultTokenLifetime (the usual server policy) is taken as the end. Nothing is verified:
// the answer is a prediction of what servers will say, not a decision.
package certstatus

import (
	"errors"
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// DefaultTokenLifetime is assumed for certificates without an end of validity.
const DefaultTokenLifetime = 24 * time.Hour

// State is the answer, from best to worst.
type State string

// The states. Each has its own exit code in "opkssh status".
const (
	Valid    State = "valid"    // valid for longer than the threshold
	Expiring State = "expiring" // valid now, but ends within the threshold
	Expired  State = "expired"  // past its end, or not yet valid
	Missing  State = "missing"  // no opkssh certificate at all
)

// Status describes one certificate.
type Status struct {
	State       State         `json:"state"`
	Path        string        `json:"path,omitempty"`
	Identity    string        `json:"identity,omitempty"` // email, or sub
	Issuer      string        `json:"issuer,omitempty"`
	Fingerprint string        `json:"fingerprint,omitempty"`
	ValidAfter  *time.Time    `json:"valid_after,omitempty"`
	ValidBefore *time.Time    `json:"valid_before,omitempty"`
	Remaining   time.Duration `json:"-"`
	// CIJob says the PK token's OP signature is a GQ256 proof, as from "opkssh login --ci": the
	// login lasts as long as the job's ID token.
	CIJob bool `json:"ci_job,omitempty"`
}

// Of evaluates cert at now: Valid if it remains valid for more than minRemaining.
func Of(cert *ssh.Certificate, now time.Time, minRemaining time.Duration) Status {
	d := sshcert.Describe(cert)
	st := Status{Fingerprint: d.Fingerprint, Identity: d.KeyID}
	after := d.ValidAfter
	st.ValidAfter = &after
	end := d.ValidBefore
	if t := d.Token; t != nil {
		st.Issuer = t.Issuer
		if t.Email != "" {
			st.Identity = t.Email
		} else {
			st.Identity = t.Subject
		}
		st.CIJob = t.Algorithm == "GQ256"
		if end == nil && st.CIJob && t.Expires != nil {
			end = t.Expires // servers hold a CI login to its token's exp
		}
		if end == nil && t.IssuedAt != nil {
			e := t.IssuedAt.Add(DefaultTokenLifetime)
			end = &e
		}
	}
	if d.Token == nil {
		st.State = Missing // not an OpenPubkey certificate
		return st
	}
	st.ValidBefore = end
	switch {
	case end == nil || now.Before(after) || !now.Before(*end):
		st.State = Expired
	case end.Sub(now) <= minRemaining:
		st.State, st.Remaining = Expiring, end.Sub(now)
	default:
		st.State, st.Remaining = Valid, end.Sub(now)
	}
	return st
}

// OfFile evaluates the certificate file at path. A missing file (also below a path that is not a
// directory), or one that holds no OpenPubkey certificate, is Missing; a file that cannot be read
// is an error.
func OfFile(path string, now time.Time, minRemaining time.Duration) (Status, error) {
	cert, err := sshcert.ReadCertFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return Status{State: Missing, Path: path}, nil
	}
	if errors.Is(err, sshcert.ErrMalformed) {
		return Status{State: Missing, Path: path}, nil
	}
	if err != nil {
		return Status{}, err
	}
	st := Of(cert, now, minRemaining)
	st.Path = path
	return st, nil
}

// Best returns the best of the statuses (the longest-lasting valid certificate first), or a
// Missing status if there are none.
func Best(all []Status) Status {
	best := Status{State: Missing}
	for _, s := range all {
		if Better(s, best) {
			best = s
		}
	}
	return best
}

// Better reports whether a is a better certificate than b: a better state, or the same state and
// longer remaining validity.
func Better(a, b Status) bool {
	return rank(a.State) < rank(b.State) || a.State == b.State && a.Remaining > b.Remaining
}

func rank(s State) int {
	switch s {
	case Valid:
		return 0
	case Expiring:
		return 1
	case Expired:
		return 2
	}
	return 3
}
