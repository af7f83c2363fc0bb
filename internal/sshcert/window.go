package sshcert

import "time"

// Backdate is how far before the login a certificate's validity starts. sshd refuses a
// certificate that is "not yet valid" by its own clock, before it even asks opkssh verify; verify
// tolerates a clock skew of two minutes for the token's iat (verifier.DefaultClockSkew), so a
// server that verify would accept must not have sshd refuse the certificate first. Starting
// early grants nothing: servers decide from the PK token, whose iat is signed by the OP.
const Backdate = 2 * time.Minute

// Window is the validity of a certificate made at now (the workstation's clock) from an ID token
// issued at issuedAt (the OP's clock), valid for lifetime.
//
// The OP's clock may be ahead of the workstation's (by minutes, with some OPs): a window that
// started at iat would then lie in the future for every server whose clock agrees with the
// workstation. So the window starts Backdate before the earlier of the two readings and lasts
// lifetime from that earlier reading. Its end is thus never later than iat+lifetime, the end a
// server with an "expiration from iat" policy and the OP's clock computes, nor than now+lifetime.
func Window(now, issuedAt time.Time, lifetime time.Duration) (validAfter, validBefore time.Time) {
	start := now
	if !issuedAt.IsZero() && issuedAt.Before(now) {
		start = issuedAt
	}
	return start.Add(-Backdate), start.Add(lifetime)
}
