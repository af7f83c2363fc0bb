package policy

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// identityForms is the help text for identity arguments.
const identityForms = "alice@example.com (or email:alice@example.com), domain:example.com, sub:ID, group:NAME, claim:NAME=VALUE, repository:OWNER/REPO,repository_owner_id=ID[,ref=REF...], project_path:GROUP/PROJECT,namespace_id=ID[,...]"

// ParseIdentityArg parses an identity as given on the command line:
//
//	alice@example.com       email (also email:alice@example.com)
//	domain:example.com      email_domain
//	sub:248289761001        sub
//	group:ssh-admins        group
//	claim:NAME=VALUE        claim; NAME is a dotted path and cannot contain '='
//	repository:OWNER/REPO,repository_owner_id=ID,ref=refs/heads/main
//	                        a CI job (github-actions, forgejo-actions); conditions after commas
//	project_path:GROUP/PROJECT,namespace_id=ID,ref_protected=true
//	                        a GitLab CI job
//
// It applies the same checks as the loader, so an identity it returns can be
// written to policies.yaml.
func ParseIdentityArg(s string) (Identity, error) {
	id, err := splitIdentityArg(s)
	if err != nil {
		return Identity{}, err
	}
	vals := []string{id.Value, id.ClaimName}
	for _, c := range id.Conditions {
		vals = append(vals, c.Value)
	}
	for _, v := range vals {
		if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return Identity{}, fmt.Errorf("identity %q contains a control character or invalid UTF-8", s)
		}
		if strings.TrimSpace(v) != v {
			return Identity{}, fmt.Errorf("identity %q has leading or trailing spaces; remove them", s)
		}
	}
	if msg := checkIdentity(id); msg != "" {
		return Identity{}, fmt.Errorf("identity %q: %s", s, msg)
	}
	for _, c := range id.Conditions {
		if msg := checkCIValue(c.Name, c.Value); msg != "" {
			return Identity{}, fmt.Errorf("identity %q: %s", s, msg)
		}
	}
	return id, nil
}

func splitIdentityArg(s string) (Identity, error) {
	prefix, rest, hasPrefix := strings.Cut(s, ":")
	if hasPrefix {
		switch prefix {
		case "email":
			return Identity{Kind: KindEmail, Value: rest}, nil
		case "domain":
			return Identity{Kind: KindEmailDomain, Value: rest}, nil
		case "sub":
			return Identity{Kind: KindSub, Value: rest}, nil
		case "group":
			return Identity{Kind: KindGroup, Value: rest}, nil
		case KindRepository, KindProjectPath:
			return splitCIArg(s, prefix, rest)
		case "claim":
			name, value, ok := strings.Cut(rest, "=")
			if !ok {
				return Identity{}, fmt.Errorf("identity %q: a claim is written claim:NAME=VALUE, e.g. claim:realm_access.roles=admin", s)
			}
			return Identity{Kind: KindClaim, ClaimName: name, Value: value}, nil
		}
	}
	if strings.Contains(s, "@") && !hasPrefix {
		return Identity{Kind: KindEmail, Value: s}, nil
	}
	return Identity{}, fmt.Errorf("identity %q is not understood; write one of: %s", s, identityForms)
}
