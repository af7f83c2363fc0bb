package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/yamlfmt"
)

// Removed says what RemoveProvider changed.
type Removed struct {
	WasDefault bool // the provider was the default, so the file now has none
}

// RemoveProvider deletes the named provider from the configuration file at path. If it was the
// default, the default: line goes too: "opkssh login" then asks for a name rather than silently
// picking another OP. Like AddProvider, it edits the YAML node tree (other entries and the
// user's comments survive) and replaces the file atomically with mode 0600.
func RemoveProvider(path, name string) (Removed, error) {
	var res Removed
	err := editConfig(path, name, func(current *ConfigFile, root *yaml.Node) error {
		providers := mappingValue(root, "providers")
		if providers == nil || !deleteKey(providers, name) {
			return fmt.Errorf("%w: %q is not under providers: in %s", ErrNoSuchProvider, name, path)
		}
		if current.Default == name {
			res.WasDefault = true
			deleteKey(root, "default")
		}
		if len(providers.Content) == 0 {
			deleteKey(root, "providers")
		}
		return nil
	})
	return res, err
}

// SetDefault makes the named provider, which the file must define, the default of the
// configuration file at path, editing it as RemoveProvider does.
func SetDefault(path, name string) error {
	return editConfig(path, name, func(_ *ConfigFile, root *yaml.Node) error {
		if d := mappingValue(root, "default"); d != nil {
			d.Kind, d.Tag, d.Value, d.Style, d.Content = yaml.ScalarNode, "!!str", name, 0, nil
		} else {
			root.Content = append([]*yaml.Node{scalar("default"), scalar(name)}, root.Content...)
		}
		return nil
	})
}

// editConfig reads and parses the configuration file, checks that it defines name, lets edit
// change its top-level mapping, checks that the result parses and writes it back atomically.
func editConfig(path, name string, edit func(current *ConfigFile, root *yaml.Node) error) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q: %s does not exist; add a provider with \"opkssh provider add\"", ErrNoSuchProvider, name, path)
	}
	if err != nil {
		return err
	}
	current, err := ParseConfig(path, data)
	if err != nil {
		return err
	}
	if _, ok := current.Providers[name]; !ok {
		return fmt.Errorf("%w: %q (defined in %s: %s)", ErrNoSuchProvider, name, path, namesOrNone(current))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if doc.Kind == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: the top level must be a mapping (default:, providers:)", path)
	}
	if err := edit(current, doc.Content[0]); err != nil {
		return err
	}
	out, err := yamlfmt.Edit(data, &doc)
	if err != nil {
		return err
	}
	if _, err := ParseConfig(path, out); err != nil {
		return fmt.Errorf("internal error: the edited configuration does not parse: %w", err)
	}
	return atomicfile.Write(path, out, 0o600)
}

// deleteKey removes key and its value from mapping m and says whether it was there.
func deleteKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
	}
	return false
}

func namesOrNone(f *ConfigFile) string {
	if len(f.Providers) == 0 {
		return "none"
	}
	return strings.Join(f.Names(), ", ")
}
