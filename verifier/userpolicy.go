package verifier

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/opkssh-team/opkssh/policy"
)

// UserPolicy says how the principal's own policy file (policies.yaml's user_policies) took part in
// a decision.
type UserPolicy struct {
	Path    string // the file that was found and consulted; "" when none was
	Granted bool   // the file allowed the login
}

// logAttrs are the decision log's fields for the user's file: "user_policy" names it whenever it
// was consulted, and "granted_by":"user_policy" marks a login the administrator's rules did not
// allow.
func (u UserPolicy) logAttrs() []any {
	switch {
	case u.Granted:
		return []any{"granted_by", "user_policy", "user_policy", u.Path}
	case u.Path != "":
		return []any{"user_policy", u.Path}
	}
	return nil
}

// userPolicyDecision gives the principal's own file its say after the administrator's policy
// decided d. The file is read only when user policies are enabled for the token's provider and d
// is a denial by the rules alone (never after a deny entry matched); it can only allow. A file that
// is unsafe or invalid is ignored and the denial's reason becomes ReasonUserPolicyError, saying why;
// a missing or unreachable file only adds a line to the explanation.
func userPolicyDecision(opts Options, pol *policy.Policy, principal, provider string, c policy.Claims, d policy.Decision) (policy.Decision, UserPolicy) {
	if !pol.UserFileMayGrant(d, provider) {
		return d, UserPolicy{}
	}
	acct, err := lookupAccount(opts.LookupUser, principal)
	if err != nil {
		d.Explain = append(d.Explain, "user policy not consulted: "+err.Error())
		return d, UserPolicy{}
	}
	f, err := pol.LoadUserFile(acct)
	if errors.Is(err, policy.ErrNoUserFile) {
		d.Explain = append(d.Explain, err.Error())
		return d, UserPolicy{}
	}
	info := UserPolicy{Path: pol.UserPolicies.FileIn(acct.Home)}
	if err != nil {
		d.Reason = ReasonUserPolicyError
		d.Explain = append(d.Explain, "user policy ignored:")
		d.Explain = append(d.Explain, strings.Split(err.Error(), "\n")...)
		return d, info
	}
	ud := pol.EvaluateUserFile(f, principal, provider, c)
	if os.Geteuid() == 0 {
		// opkssh policy test, run as root, reads files the verify user may not be able to.
		ud.Explain = append(ud.Explain, "user policy read as root: verify reads it as sshd's AuthorizedKeysCommandUser, which needs search permission on each directory and read permission on the file")
	}
	if ud.Allowed {
		info.Granted = true
		ud.Explain = append(d.Explain, ud.Explain...)
		return ud, info
	}
	d.Explain = append(d.Explain, ud.Explain...)
	return d, info
}

// lookupAccount finds the principal's uid and home. The static opkssh binary reads /etc/passwd
// (Go's os/user without cgo): accounts known only through NSS modules such as LDAP or SSSD are not
// found, so their files are not read.
func lookupAccount(lookup func(string) (*user.User, error), name string) (policy.UserAccount, error) {
	if lookup == nil {
		lookup = user.Lookup
	}
	u, err := lookup(name)
	if err != nil {
		return policy.UserAccount{}, fmt.Errorf("looking up %q: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return policy.UserAccount{}, fmt.Errorf("user %q has uid %q, not a number", name, u.Uid)
	}
	return policy.UserAccount{Name: name, UID: uid, Home: u.HomeDir}, nil
}
