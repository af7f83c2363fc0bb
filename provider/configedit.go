package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/yamlfmt"
)

// ErrProviderExists is returned by AddProvider for a name the file already defines.
var ErrProviderExists = errors.New("provider already exists")

// AddProvider adds a named provider to the configuration file at path (creating the file and its
// directory if needed) and, if makeDefault, makes it the default. The entry must resolve to a
// valid configuration. The file is edited as a YAML node tree, so the user's comments and order
// survive, and it is replaced atomically with mode 0600: it may hold a client secret.
func AddProvider(path, name string, e Entry, makeDefault bool) error {
	if err := validName(name); err != nil {
		return err
	}
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Parse first: refuse to edit a file we could not read back.
	current, err := ParseConfig(path, data)
	if err != nil {
		return err
	}
	if _, ok := current.Providers[name]; ok {
		return fmt.Errorf("%w: %q is already in %s; edit the file to change it", ErrProviderExists, name, path)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if doc.Kind == 0 { // empty file
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: the top level must be a mapping (default:, providers:)", path)
	}
	providers := mappingValue(root, "providers")
	switch {
	case providers == nil:
		providers = &yaml.Node{Kind: yaml.MappingNode}
		root.Content = append(root.Content, scalar("providers"), providers)
	case providers.Kind != yaml.MappingNode: // "providers:" with no value
		*providers = yaml.Node{Kind: yaml.MappingNode}
	}
	var value yaml.Node
	if err := value.Encode(e); err != nil {
		return err
	}
	providers.Content = append(providers.Content, scalar(name), &value)
	if makeDefault || current.Default == "" && len(current.Providers) == 0 {
		if d := mappingValue(root, "default"); d != nil {
			d.Kind, d.Tag, d.Value, d.Style = yaml.ScalarNode, "!!str", name, 0
		} else {
			root.Content = append([]*yaml.Node{scalar("default"), scalar(name)}, root.Content...)
		}
	}

	out, err := yamlfmt.Edit(data, &doc)
	if err != nil {
		return err
	}
	if _, err := ParseConfig(path, out); err != nil {
		return fmt.Errorf("internal error: the edited configuration does not parse: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, out, 0o600)
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
