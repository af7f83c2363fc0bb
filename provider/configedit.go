package provider

import (
	"context"
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

// AddOptions are AddProvider's choices beyond the entry itself.
type AddOptions struct {
	Default bool          // make the new provider the default
	Entra   EntraResolver // looks up a microsoft tenant given as a domain
}

// Added says what AddProvider wrote.
type Added struct {
	Config  Config       // the new provider's login configuration
	Default bool         // the new provider is the file's default
	Tenant  *EntraTenant // the microsoft preset's tenant as resolved; nil for other entries
}

// AddProvider adds a named provider to the configuration file at path (creating the file and its
// directory if needed) and, if opts.Default, makes it the default. The entry must resolve to a
// valid configuration. A microsoft entry without an explicit issuer keeps its tenant as the
// directory ID: a domain is looked up with opts.Entra (the only network request, made after every
// other check) and written as the ID, with the domain as a comment. The file is edited as a YAML
// node tree, so the user's comments and order survive, and it is replaced atomically with mode
// 0600: it may hold a client secret.
func AddProvider(ctx context.Context, path, name string, e Entry, opts AddOptions) (Added, error) {
	if err := validName(name); err != nil {
		return Added{}, err
	}
	// Check all the rest before a domain is looked up: a well-formed tenant stands in as a
	// placeholder ID, a malformed one fails here.
	lookup := e.Preset == "microsoft" && e.Issuer == ""
	probe := e
	if lookup && checkTenantName(e.Tenant) == nil {
		probe.Tenant = placeholderTenant
	}
	if err := checkEntry(probe); err != nil {
		return Added{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Added{}, err
	}
	// Parse first: refuse to edit a file we could not read back.
	current, err := ParseConfig(path, data)
	if err != nil {
		return Added{}, err
	}
	if _, ok := current.Providers[name]; ok {
		return Added{}, fmt.Errorf("%w: %q is already in %s; edit the file to change it", ErrProviderExists, name, path)
	}
	var added Added
	if lookup {
		t, err := opts.Entra.Resolve(ctx, e.Tenant)
		if err != nil {
			return Added{}, err
		}
		added.Tenant = &t
		e.Tenant = t.ID
		if opts.Entra.authority() != EntraAuthority {
			e.Issuer = t.Issuer // the preset's issuer is the global cloud's
		}
	}
	if added.Config, err = e.Config(); err != nil {
		return Added{}, err
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Added{}, fmt.Errorf("%s: %v", path, err)
	}
	if doc.Kind == 0 { // empty file
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Added{}, fmt.Errorf("%s: the top level must be a mapping (default:, providers:)", path)
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
		return Added{}, err
	}
	if t := mappingValue(&value, "tenant"); t != nil && added.Tenant != nil && added.Tenant.Domain != "" {
		t.LineComment = "# " + added.Tenant.Domain
	}
	providers.Content = append(providers.Content, scalar(name), &value)
	if opts.Default || current.Default == "" && len(current.Providers) == 0 {
		added.Default = true
		if d := mappingValue(root, "default"); d != nil {
			d.Kind, d.Tag, d.Value, d.Style = yaml.ScalarNode, "!!str", name, 0
		} else {
			root.Content = append([]*yaml.Node{scalar("default"), scalar(name)}, root.Content...)
		}
	}

	out, err := yamlfmt.Edit(data, &doc)
	if err != nil {
		return Added{}, err
	}
	if _, err := ParseConfig(path, out); err != nil {
		return Added{}, fmt.Errorf("internal error: the edited configuration does not parse: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Added{}, err
	}
	if err := atomicfile.Write(path, out, 0o600); err != nil {
		return Added{}, err
	}
	return added, nil
}

// checkEntry says whether the entry resolves to a valid login configuration.
func checkEntry(e Entry) error {
	cfg, err := e.Config()
	if err != nil {
		return err
	}
	return cfg.WithDefaults().Validate()
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
