package policy

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// UserPolicies is the user_policies block of policies.yaml: whether users may let identities log
// in as themselves from a file in their home directory.
//
//	user_policies:
//	  enabled: true
//	  path: .config/opkssh/policies.yaml   # relative to the home; this is the default
//	  providers: [corp]                    # providers user files may name; required when enabled
type UserPolicies struct {
	Enabled   bool
	Path      string   // the user's file, relative to their home directory
	Providers []string // the providers whose identities user files may name
	Pos       Position // where the block is; zero when there is none
}

// DefaultUserPolicyPath is where a user's file is, relative to their home, unless
// user_policies.path says otherwise.
const DefaultUserPolicyPath = ".config/opkssh/policies.yaml"

// maxUserFileSize bounds a user's file: it lists a few people, and verify reads it on a login.
const maxUserFileSize = 64 << 10

// userIdentityKinds are the identities a user file may hold: the two that name one person.
var userIdentityKinds = []string{KindEmail, KindSub}

// ErrNoUserFile is wrapped by LoadUserFile's error when the user has no file that verify can
// reach: it does not exist, or a directory on the way cannot be searched by the verify user (as
// with a private home). That is the normal case for a user who has not set one up, not a problem.
var ErrNoUserFile = errors.New("no user policy file")

// userPolicies parses the user_policies block; key is its key node, for positions.
func (p *parser) userPolicies(key, n *yaml.Node) {
	const field = "user_policies"
	up := &UserPolicies{Path: DefaultUserPolicyPath, Pos: p.pos(key)}
	m, ok := p.fields(p.errs, n, field, "enabled", "path", "providers")
	if !ok {
		return
	}
	if e, ok := m["enabled"]; !ok {
		p.errs.add(up.Pos, field, "missing enabled; write enabled: true to let users grant logins to their own account, or remove the block")
	} else if b, ok := p.boolean(p.errs, e.val, field+".enabled"); ok {
		up.Enabled = b
	}
	if e, ok := m["path"]; ok {
		if s, ok := p.str(p.errs, e.val, field+".path"); ok {
			if msg := checkUserPath(s); msg != "" {
				p.errs.add(p.pos(e.val), field+".path", "%s", msg)
			}
			up.Path = s
		}
	}
	if e, ok := m["providers"]; ok {
		list, _ := p.strList(p.errs, e.val, field+".providers")
		for i, name := range list {
			if name != "" {
				p.frag.refs = append(p.frag.refs, providerRef{name, p.pos(e.val.Content[i]), fmt.Sprintf("%s.providers[%d]", field, i)})
			}
		}
		up.Providers = list
	} else if up.Enabled {
		p.errs.add(up.Pos, field, "missing providers; list the providers whose identities users may name, e.g. providers: [corp]")
	}
	p.frag.userPolicies = up
}

// checkUserPath returns what is wrong with user_policies.path, or "".
func checkUserPath(s string) string {
	if filepath.IsAbs(s) {
		return fmt.Sprintf("%q is absolute; write the path relative to the user's home, e.g. %s", s, DefaultUserPolicyPath)
	}
	if filepath.Clean(s) != s || slices.Contains(strings.Split(s, "/"), "..") || s == "." {
		return fmt.Sprintf("%q must be a plain path below the home, without ., .., or doubled or trailing slashes; e.g. %s", s, DefaultUserPolicyPath)
	}
	return ""
}

// UserAccount is the account whose own policy file is read: the login's principal as the
// system's user database describes it.
type UserAccount struct {
	Name string
	UID  int
	Home string // absolute
}

// UserFile is a user's own policy file, parsed and validated:
//
//	version: 1
//	identities:                      # who may log in as the file's owner
//	  - email: bob@example.com       # needs email_verified like a rule's email identity
//	    provider: corp               # one of user_policies.providers
//	  - sub: "248289761001"
//	    provider: corp
type UserFile struct {
	Path       string
	Identities []Identity // KindEmail or KindSub, each with its Provider
	Pos        Position   // of the identities key
}

// ParseUserFile parses and validates the contents of a user's file. allowed lists the providers
// the administrator lets user files name (user_policies.providers); naming another is an error.
// Like Parse it does not touch the file system.
func ParseUserFile(file string, data []byte, allowed []string) (*UserFile, error) {
	errs := &errList{}
	if len(data) > maxUserFileSize {
		errs.add(Position{file, 1}, "", "file is larger than 64 KiB; a user policy lists a few people")
		return nil, errs.err()
	}
	doc, e := decodeOne(file, data)
	if e != nil {
		errs.add(e.Pos, e.Field, "%s", e.Msg)
		return nil, errs.err()
	}
	p := &parser{file: file, errs: errs, frag: &fragment{file: file}}
	uf := p.userFile(doc)
	for _, r := range p.frag.refs {
		if !slices.Contains(allowed, r.name) {
			errs.add(r.pos, r.field, "provider %q is not one that user policies may name (allowed: %s); fix the name or ask the administrator", r.name, strings.Join(allowed, ", "))
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return uf, nil
}

func (p *parser) userFile(doc *yaml.Node) *UserFile {
	uf := &UserFile{Path: p.file}
	root := doc.Content[0]
	if p.hasAnchors(root) {
		return uf
	}
	m, ok := p.fields(p.errs, root, "", "version", "identities")
	if !ok {
		return uf
	}
	p.version(root, m)
	e, ok := m["identities"]
	if !ok {
		p.errs.add(p.pos(root), "identities", "missing; list who may log in as you, e.g. identities: [{email: bob@example.com, provider: corp}]")
		return uf
	}
	uf.Pos = p.pos(e.key)
	if !p.nonEmptyList(p.errs, e.val, "identities") {
		return uf
	}
	for i, n := range e.val.Content {
		field := fmt.Sprintf("identities[%d]", i)
		id, ok := p.identity(n, field, true)
		if !ok {
			continue
		}
		if !slices.Contains(userIdentityKinds, id.Kind) {
			p.errs.add(id.Pos, field+"."+id.Kind, "%s identities are not allowed in a user policy, which names people: use email or sub (ask the administrator for a rule)", id.Kind)
			continue
		}
		if id.Provider == "" {
			p.errs.add(id.Pos, field, "missing provider; name the provider that vouches for this identity, e.g. provider: corp")
			continue
		}
		uf.Identities = append(uf.Identities, id)
	}
	return uf
}

// UserFileMayGrant reports whether, after EvaluateFrom returned d for a token of providerName,
// the principal's own file may still allow the login: user policies are enabled for that provider
// and d is a denial by the rules alone. A deny entry, an invalid principal and an unknown or broken
// provider are final.
func (p *Policy) UserFileMayGrant(d Decision, providerName string) bool {
	if d.Allowed || p == nil || !p.UserPolicies.allows(providerName) {
		return false
	}
	switch d.Reason {
	case ReasonNoRule, ReasonNoMatchingIdentity, ReasonEmailNotVerified, ReasonRequireAMR, ReasonRequireFrom:
		return true
	}
	return false
}

// FileIn returns the path of the user file of an account whose home is home.
func (u UserPolicies) FileIn(home string) string { return filepath.Join(home, u.Path) }

func (u UserPolicies) allows(providerName string) bool {
	return u.Enabled && slices.Contains(u.Providers, providerName)
}

// EvaluateUserFile decides by f, the principal's own file, for a verified token from providerName
// with claims c. Call it only when UserFileMayGrant. The entries for that provider are matched
// like the identities of a rule (email needs email_verified unless the provider says otherwise);
// an allowing Decision carries such a rule, positioned at f's identities key.
func (p *Policy) EvaluateUserFile(f *UserFile, principal, providerName string, c Claims) Decision {
	prov, ok := p.Providers[providerName]
	if !ok || !p.UserPolicies.allows(providerName) {
		return deny(ReasonNoRule, fmt.Sprintf("user policy %s: provider %q is not allowed in user policies", f.Path, providerName))
	}
	r := &Rule{Principals: []string{principal}, Provider: providerName, Pos: f.Pos}
	for _, id := range f.Identities {
		if id.Provider == providerName {
			r.Identities = append(r.Identities, id)
		}
	}
	if len(r.Identities) == 0 {
		return deny(ReasonNoRule, fmt.Sprintf("user policy %s has no identity for provider %q", f.Path, providerName))
	}
	reason, lines := matcher{prov: prov, claims: c}.rule(r)
	if reason == ReasonAllowed {
		return Decision{Allowed: true, Reason: ReasonAllowed, Rule: r, Explain: lines}
	}
	return Decision{Reason: reason, Explain: lines}
}

// LoadUserFile reads acct's file (user_policies.path below the home) the way sshd's StrictModes
// checks authorized_keys, and parses it with ParseUserFile. It never reads a file for uid 0. Every directory from the home down and
// the file must be owned by acct or root and not writable by group or others; no symbolic link is
// followed below the home; the file must be a regular file of at most 64 KiB. All of this is
// checked on the open descriptors, so a swap between check and read is caught.
//
// An error wrapping ErrNoUserFile means there is nothing to read, and the user grants nothing.
// Any other error (wrapping ErrUnsafeFile, or *Error values from parsing) means the file is there
// but unusable: the caller must ignore it, deny by it, and say why.
func (p *Policy) LoadUserFile(acct UserAccount) (*UserFile, error) {
	path := p.UserPolicies.FileIn(acct.Home)
	switch {
	case !p.UserPolicies.Enabled || p.UserPolicies.Path == "":
		return nil, fmt.Errorf("%w: user policies are not enabled", ErrNoUserFile)
	case acct.UID == 0:
		// root's logins are the administrator's rules, and reading root's home would need it opened up.
		return nil, fmt.Errorf("%w: user policies are never read for uid 0 (%s)", ErrNoUserFile, acct.Name)
	case !filepath.IsAbs(acct.Home):
		return nil, fmt.Errorf("%w: %s: home directory %q is not an absolute path", ErrNoUserFile, path, acct.Home)
	}
	data, err := readUserFile(acct, p.UserPolicies.Path)
	if err != nil {
		return nil, err
	}
	return ParseUserFile(path, data, p.UserPolicies.Providers)
}
