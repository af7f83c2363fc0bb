package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/filelock"
	"github.com/opkssh-team/opkssh/internal/yamlfmt"
)

// Errors of Remove that leave the file unchanged; test with errors.Is.
var (
	// ErrNotListed: no rule of the provider that lists the principal lists
	// the identity, so there is nothing to remove.
	ErrNotListed = errors.New("identity not listed")
	// ErrSharedRule: a rule that lists the identity also lists other
	// principals, and removing the identity would take those away too.
	ErrSharedRule = errors.New("rule lists other principals")
)

// RemoveResult says what Remove did.
type RemoveResult struct {
	// Message has one line per rule changed or deleted, then notes, e.g.
	// "removed alice@example.com from rule at policies.yaml:12".
	Message string
}

// Remove is the inverse of Add: it stops id from logging in as principal
// with tokens from providerName, by editing the policy file at path.
//
// id is removed from every rule of that provider that lists principal and
// id (an email matches ignoring ASCII case, as in Evaluate). A rule left
// without identities is deleted, and so is a rules list left empty. A rule
// that lists other principals as well is not edited: removing id there
// would also take away its access as those principals, which the caller did
// not ask for, so Remove then changes nothing and returns an error wrapping
// ErrSharedRule that names the rule. If no rule lists id, the error wraps
// ErrNotListed. Deny entries are never touched.
//
// The edit has the guarantees of Add: the flock on path + ".lock", comments
// and order kept, the result checked with Parse before the file is replaced
// atomically with the same mode and owner.
//
// Other rules may still let id in (an email_domain or group rule, say);
// the message ends with a note naming such a rule when it can tell.
func Remove(path, principal string, id Identity, providerName string) (RemoveResult, error) {
	if !ValidPrincipal(principal) {
		return RemoveResult{}, fmt.Errorf("%q is not a valid user name; use 1-32 characters from A-Z a-z 0-9 _ . - not starting with '-' or '.'", principal)
	}
	if id.Provider != "" {
		return RemoveResult{}, errors.New("a rule identity has no provider of its own; pass the provider separately")
	}
	if msg := checkIdentity(id); msg != "" {
		return RemoveResult{}, fmt.Errorf("identity %s: %s", id, msg)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return RemoveResult{}, fmt.Errorf("policy file %s does not exist; pass the policy file with --policy", path)
	}
	unlock, err := filelock.Lock(path+".lock", nil)
	if err != nil {
		return RemoveResult{}, fmt.Errorf("locking %s: %w", path, err)
	}
	defer unlock()

	data, fi, err := readForEdit(path)
	if err != nil {
		return RemoveResult{}, err
	}
	pol, err := Parse(path, data)
	if err != nil {
		return RemoveResult{}, fmt.Errorf("%s does not load, fix it before removing from it:\n%w", path, err)
	}
	if _, ok := pol.Providers[providerName]; !ok && pol.Broken[providerName] == nil {
		return RemoveResult{}, fmt.Errorf("unknown provider %q in %s (known: %s)", providerName, path, knownList(allProviders(pol)))
	}

	var hits []int
	var shared []string
	for i, r := range pol.Rules {
		if r.Provider != providerName || !slices.Contains(r.Principals, principal) || !slices.ContainsFunc(r.Identities, id.sameAs) {
			continue
		}
		hits = append(hits, i)
		if others := slices.DeleteFunc(slices.Clone(r.Principals), func(p string) bool { return p == principal }); len(others) > 0 {
			shared = append(shared, fmt.Sprintf("rule at %s lists principals [%s], and removing %s from it would also stop it logging in as %s",
				r.Pos, strings.Join(r.Principals, ", "), id, strings.Join(others, " and ")))
		}
	}
	if len(hits) == 0 {
		return RemoveResult{}, notListed(pol, path, principal, id, providerName)
	}
	if len(shared) > 0 {
		return RemoveResult{}, &refusal{ErrSharedRule, fmt.Sprintf("nothing was changed: %s. Edit %s by hand: split the rule into one for %s and one for the other principals, then run this again",
			strings.Join(shared, "; "), path, principal)}
	}

	newData, deleted, err := cut(data, pol, hits, id)
	if err != nil {
		return RemoveResult{}, fmt.Errorf("editing %s: %w", path, err)
	}
	newPol, err := Parse(path, newData)
	if err != nil {
		return RemoveResult{}, fmt.Errorf("editing %s produced an invalid policy, nothing was written:\n%w", path, err)
	}
	if err := writeAtomic(path, newData, fi); err != nil {
		return RemoveResult{}, err
	}

	var lines []string
	gone := 0 // rules deleted before the current one: the new index is i - gone
	for _, i := range hits {
		if deleted[i] {
			lines = append(lines, fmt.Sprintf("Removed %s as %s: deleted the rule that was at %s, it had no other identities", id, principal, pol.Rules[i].Pos))
			gone++
			continue
		}
		lines = append(lines, fmt.Sprintf("Removed %s from rule at %s", id, newPol.Rules[i-gone].Pos))
	}
	if why, ok := stillAllowed(newPol, principal, id, providerName); ok {
		lines = append(lines, fmt.Sprintf("note: %s can still log in as %s: %s", id, principal, why))
	}
	return RemoveResult{Message: strings.Join(lines, "\n")}, nil
}

// notListed builds the ErrNotListed error, pointing at the rules that do
// list id for another principal or provider, in case of a mix-up.
func notListed(pol *Policy, path, principal string, id Identity, providerName string) error {
	msg := fmt.Sprintf("%s is not listed for %s with provider %q in %s; nothing was changed", id, principal, providerName, path)
	for _, r := range pol.Rules {
		if slices.ContainsFunc(r.Identities, id.sameAs) {
			msg += fmt.Sprintf("\nnote: rule at %s lists it for [%s] with provider %q", r.Pos, strings.Join(r.Principals, ", "), r.Provider)
		}
	}
	return &refusal{ErrNotListed, msg}
}

// refusal is an error of Remove with a complete message; errors.Is finds
// its sentinel.
type refusal struct {
	sentinel error
	msg      string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.sentinel }

// cut removes id from the rules at the indexes hits (ascending) of the
// document and deletes the rules it empties. It returns the re-encoded
// document and the indexes of the deleted rules.
func cut(data []byte, pol *Policy, hits []int, id Identity) ([]byte, map[int]bool, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, err
	}
	root := doc.Content[0]
	rules := mapValue(root, "rules")
	deleted := map[int]bool{}
	// Backwards, so that deleting a rule does not shift the ones still to do.
	for _, i := range slices.Backward(hits) {
		ids := mapValue(rules.Content[i], "identities")
		// The parse succeeded, so node j is pol.Rules[i].Identities[j].
		var keep []*yaml.Node
		for j, n := range ids.Content {
			if !pol.Rules[i].Identities[j].sameAs(id) {
				keep = append(keep, n)
			}
		}
		ids.Content = keep
		if len(keep) == 0 {
			rules.Content = slices.Delete(rules.Content, i, i+1)
			deleted[i] = true
		}
	}
	if len(rules.Content) == 0 {
		// An empty rules list does not load; without the key the policy
		// simply has no rules. yaml.v3 may have hung the comments that end
		// the file on the key: keep them at the end of the document.
		deleteKey(root, "rules", &doc)
	}
	out, err := yamlfmt.Edit(data, &doc)
	return out, deleted, err
}

// deleteKey removes key and its value from mapping m, moving their foot
// comments to keeper's.
func deleteKey(m *yaml.Node, key string, keeper *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		for _, n := range m.Content[i : i+2] {
			if n.FootComment != "" {
				keeper.FootComment = strings.TrimPrefix(keeper.FootComment+"\n"+n.FootComment, "\n")
			}
		}
		m.Content = slices.Delete(m.Content, i, i+2)
		return
	}
}

// stillAllowed evaluates a token that carries exactly what id matches on and
// reports the explanation if some other rule still lets it in. It cannot
// know the person's other claims (their groups, say), so silence does not
// prove that they are locked out.
func stillAllowed(pol *Policy, principal string, id Identity, providerName string) (string, bool) {
	prov, ok := pol.Providers[providerName]
	if !ok {
		return "", false
	}
	c := Claims{}
	switch id.Kind {
	case KindEmail:
		c["email"], c["email_verified"] = id.Value, true
	case KindEmailDomain:
		c["email"], c["email_verified"] = "someone@"+id.Value, true
	case KindSub:
		c["sub"] = id.Value
	case KindGroup:
		c[prov.GroupsClaim] = []any{id.Value}
	case KindClaim:
		c[id.ClaimName] = id.Value
	}
	d := pol.Evaluate(principal, providerName, c)
	if !d.Allowed || len(d.Explain) == 0 {
		return "", false
	}
	return d.Explain[0], true
}
