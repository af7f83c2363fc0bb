package policy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/filelock"
	"github.com/opkssh-team/opkssh/internal/yamlfmt"
)

// AddResult says what Add did.
type AddResult struct {
	Changed bool
	Message string // e.g. "added alice@example.com to rule at policies.yaml:12"
}

// Add lets id log in as principal with tokens from providerName, by editing
// the policy file at path (one file; the provider must be defined in it).
//
// If a rule without require has exactly principals: [principal] and that
// provider, id is appended to its identities; otherwise a new rule is
// appended to rules. Nothing changes if a rule without require already
// allows id. Comments and order survive (yaml.v3 drops blank lines); the
// result must pass Parse before it replaces the file atomically, so a
// failed Add leaves the file as it was. Concurrent Adds are serialized by a
// flock on path + ".lock".
func Add(path, principal string, id Identity, providerName string) (AddResult, error) {
	if !ValidPrincipal(principal) {
		return AddResult{}, fmt.Errorf("%q is not a valid user name; use 1-32 characters from A-Z a-z 0-9 _ . - not starting with '-' or '.'", principal)
	}
	if id.Provider != "" {
		return AddResult{}, errors.New("a rule identity has no provider of its own; pass the provider separately")
	}
	if msg := checkIdentity(id); msg != "" {
		return AddResult{}, fmt.Errorf("identity %s: %s", id, msg)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return AddResult{}, fmt.Errorf("policy file %s does not exist: create it with a providers section first (see examples/policies.yaml), or pass --policy", path)
	}
	unlock, err := filelock.Lock(path+".lock", nil)
	if err != nil {
		return AddResult{}, fmt.Errorf("locking %s: %w", path, err)
	}
	defer unlock()

	data, fi, err := readForEdit(path)
	if err != nil {
		return AddResult{}, err
	}
	pol, err := Parse(path, data)
	if err != nil {
		return AddResult{}, fmt.Errorf("%s does not load, fix it before adding to it:\n%w", path, err)
	}
	if _, ok := pol.Providers[providerName]; !ok && pol.Broken[providerName] == nil {
		return AddResult{}, fmt.Errorf("unknown provider %q in %s (known: %s); add it under providers first", providerName, path, knownList(allProviders(pol)))
	}
	target := -1
	for i, r := range pol.Rules {
		if r.Provider != providerName || !slices.Contains(r.Principals, principal) || len(r.RequireAMR) > 0 || len(r.RequireFrom) > 0 {
			continue
		}
		if slices.ContainsFunc(r.Identities, id.sameAs) {
			return AddResult{Message: fmt.Sprintf("%s is already allowed as %s by rule at %s", id, principal, r.Pos)}, nil
		}
		if target < 0 && len(r.Principals) == 1 {
			target = i
		}
	}

	newData, err := insert(data, target, principal, id, providerName)
	if err != nil {
		return AddResult{}, fmt.Errorf("editing %s: %w", path, err)
	}
	newPol, err := Parse(path, newData)
	if err != nil {
		return AddResult{}, fmt.Errorf("editing %s produced an invalid policy, nothing was written:\n%w", path, err)
	}
	if err := writeAtomic(path, newData, fi); err != nil {
		return AddResult{}, err
	}

	var msg string
	if target >= 0 {
		msg = fmt.Sprintf("Added %s to rule at %s", id, newPol.Rules[target].Pos)
	} else {
		msg = fmt.Sprintf("Added %s as %s in a new rule at %s", id, principal, newPol.Rules[len(newPol.Rules)-1].Pos)
	}
	return AddResult{Changed: true, Message: msg + notes(pol, id, providerName)}, nil
}

// notes warns about what will still keep the identity out.
func notes(pol *Policy, id Identity, providerName string) string {
	var s string
	if err := pol.Broken[providerName]; err != nil {
		s += fmt.Sprintf("\nnote: provider %q is unusable until fixed: %v", providerName, err)
	}
	for _, d := range pol.Deny {
		if (d.Provider == "" || d.Provider == providerName) && d.sameAs(id) {
			s += fmt.Sprintf("\nnote: deny entry at %s still refuses %s", d.Pos, id)
		}
	}
	return s
}

func allProviders(pol *Policy) map[string]bool {
	m := map[string]bool{}
	for n := range pol.Providers {
		m[n] = true
	}
	for n := range pol.Broken {
		m[n] = true
	}
	return m
}

// readForEdit reads the policy file and returns its FileInfo, whose mode
// and owner the new file gets.
func readForEdit(path string) ([]byte, fs.FileInfo, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, fmt.Errorf("%s is a symbolic link; edit the file it points to (replacing it would break the link)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	return data, fi, err
}

// insert adds id to the rule at index target of the rules list, or as a
// new rule when target < 0, and returns the re-encoded document.
func insert(data []byte, target int, principal string, id Identity, providerName string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	rules := mapValue(root, "rules")
	if target >= 0 {
		ids := mapValue(rules.Content[target], "identities")
		ids.Content = append(ids.Content, identityNode(id))
	} else {
		if rules == nil {
			rules = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			root.Content = append(root.Content, str("rules"), rules)
		}
		rules.Content = append(rules.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
			str("principals"), {Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{str(principal)}},
			str("provider"), str(providerName),
			str("identities"), {Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{identityNode(id)}},
		}})
	}
	return yamlfmt.Edit(data, &doc)
}

// mapValue returns the value of key in mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func identityNode(id Identity) *yaml.Node {
	val := str(id.Value)
	if id.Kind == KindClaim {
		val = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle, Content: []*yaml.Node{
			str("name"), str(id.ClaimName), str("value"), str(id.Value),
		}}
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str(id.Kind), val}}
	for _, c := range id.Conditions {
		v := str(c.Value)
		if c.Name == "ref_protected" {
			v.Tag = "!!bool"
		}
		n.Content = append(n.Content, str(c.Name), v)
	}
	return n
}

// writeAtomic replaces path with data (atomicfile), keeping the mode and owner of the file it
// replaces, described by old.
func writeAtomic(path string, data []byte, old fs.FileInfo) error {
	return atomicfile.WriteWith(path, data, atomicfile.Options{Like: old})
}
