package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// The client configuration file names the OPs a user logs in with, so that "opkssh login corp"
// (or plain "opkssh login", with a default) replaces a line of flags:
//
//	default: corp
//	agent: true                  # login --agent by default (a provider may say agent: false)
//	providers:
//	  corp:
//	    preset: generic          # google, microsoft, gitlab or generic (the default)
//	    issuer: https://sso.example.com/realms/main
//	    client_id: opkssh
//	  work:
//	    preset: microsoft
//	    tenant: b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f  # contoso.onmicrosoft.com
//	    client_id: 7a1b…
//
// A microsoft tenant is the directory (tenant) ID: "opkssh provider add" looks a domain up (see
// entra.go). An entry's explicit fields win over its preset's. Unknown keys are errors, so a typo never
// silently logs in somewhere else.

// Environment variables read by the CLI, for CI jobs and scripts that have no config file. They
// override the configuration file and are overridden by flags.
const (
	EnvProvider     = "OPKSSH_PROVIDER"      // name of the provider to use, like "opkssh login NAME"
	EnvIssuer       = "OPKSSH_ISSUER"        // like --issuer
	EnvClientID     = "OPKSSH_CLIENT_ID"     // like --client-id
	EnvClientSecret = "OPKSSH_CLIENT_SECRET" // like --client-secret
)

// ConfigFile is the parsed client configuration file.
type ConfigFile struct {
	Default string `yaml:"default,omitempty"`
	// Agent makes "opkssh login" add the login to the ssh-agent, as --agent does, for every
	// provider that does not say otherwise.
	Agent     bool             `yaml:"agent,omitempty"`
	Providers map[string]Entry `yaml:"providers,omitempty"`

	Path string `yaml:"-"` // where it was read from
}

// Entry is one named provider of the configuration file.
type Entry struct {
	Preset       string   `yaml:"preset,omitempty"`
	Tenant       string   `yaml:"tenant,omitempty"`
	Issuer       string   `yaml:"issuer,omitempty"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret,omitempty"`
	Scopes       []string `yaml:"scopes,omitempty,flow"`
	RedirectURIs []string `yaml:"redirect_uris,omitempty"`
	// NoRefreshToken: never ask this OP for a refresh token, nor store or use one.
	NoRefreshToken bool `yaml:"no_refresh_token,omitempty"`
	// Agent, if set, is this provider's default for --agent, over the file's top-level one.
	Agent *bool `yaml:"agent,omitempty"`
}

// ErrNoSuchProvider is returned for a provider name the configuration file does not define.
var ErrNoSuchProvider = errors.New("no such provider")

// ConfigPath returns $XDG_CONFIG_HOME/opkssh/config.yaml, or ~/.config/opkssh/config.yaml when
// XDG_CONFIG_HOME is unset or not absolute (as the XDG Base Directory specification says).
func ConfigPath(getenv func(string) string) (string, error) {
	if dir := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "opkssh", "config.yaml"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("cannot find the configuration file: neither XDG_CONFIG_HOME nor HOME is set")
	}
	return filepath.Join(home, ".config", "opkssh", "config.yaml"), nil
}

// LoadConfig reads the configuration file at path. A missing file is an empty configuration.
func LoadConfig(path string) (*ConfigFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &ConfigFile{Path: path}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig parses the configuration file's content; path is for error messages.
func ParseConfig(path string, data []byte) (*ConfigFile, error) {
	f := &ConfigFile{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(path, err)
	}
	f.Path = path
	for _, name := range f.Names() {
		if err := validName(name); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if f.Default != "" {
		if _, ok := f.Providers[f.Default]; !ok {
			return nil, fmt.Errorf("%s: default %q is not one of the providers (%s)", path, f.Default, strings.Join(f.Names(), ", "))
		}
	}
	return f, nil
}

// yamlError names the file in each of yaml.v3's messages ("line 4: field x not found…").
func yamlError(path string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		m = strings.Replace(m, "not found in type provider.Entry", "is not a provider setting (issuer, client_id, client_secret, scopes, redirect_uris, preset, tenant, no_refresh_token, agent)", 1)
		m = strings.Replace(m, "not found in type provider.ConfigFile", "is not a top-level setting (default, agent, providers)", 1)
		msgs[i] = path + ": " + m
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Names returns the provider names in order.
func (f *ConfigFile) Names() []string {
	names := make([]string, 0, len(f.Providers))
	for n := range f.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Provider returns the login configuration of the named provider.
func (f *ConfigFile) Provider(name string) (Config, error) {
	e, ok := f.Providers[name]
	if !ok {
		known := "it defines none"
		if len(f.Providers) > 0 {
			known = "it defines " + strings.Join(f.Names(), ", ")
		}
		return Config{}, fmt.Errorf("%w %q in %s (%s); add it with \"opkssh provider add %s --preset … --client-id …\"", ErrNoSuchProvider, name, f.Path, known, name)
	}
	cfg, err := e.Config()
	if err != nil {
		return Config{}, fmt.Errorf("provider %q in %s: %w", name, f.Path, err)
	}
	return cfg, nil
}

// AgentDefault says whether logins with the named provider ("" for an OP given by flags or the
// environment) go to the ssh-agent when no --agent flag says: the provider's agent setting, else
// the file's.
func (f *ConfigFile) AgentDefault(name string) bool {
	if e, ok := f.Providers[name]; ok && e.Agent != nil {
		return *e.Agent
	}
	return f.Agent
}

// Config resolves the entry's preset and explicit fields into a login configuration. It does not
// validate the result: flags and the environment may still complete or change it.
func (e Entry) Config() (Config, error) {
	presetName := e.Preset
	if presetName == "" {
		presetName = "generic"
	}
	p, ok := LookupPreset(presetName)
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q: use one of %s", e.Preset, strings.Join(PresetNames(), ", "))
	}
	cfg := Config{
		Issuer:         e.Issuer,
		ClientID:       e.ClientID,
		ClientSecret:   e.ClientSecret,
		Scopes:         slices.Clone(p.Scopes),
		RedirectURIs:   slices.Clone(e.RedirectURIs),
		NoRefreshToken: e.NoRefreshToken,
	}
	if cfg.Issuer == "" {
		iss, err := p.Issuer(e.Tenant)
		if err != nil {
			return Config{}, err
		}
		cfg.Issuer = iss
	} else if e.Tenant != "" && presetName != "microsoft" {
		return Config{}, errors.New("only the microsoft preset takes a tenant")
	}
	if len(e.Scopes) > 0 {
		cfg.Scopes = slices.Clone(e.Scopes)
	}
	return cfg, nil
}

// Overrides replace the fields of a Config that they set (non-empty).
type Overrides struct {
	Issuer, ClientID, ClientSecret string
	Scopes, RedirectURIs           []string
	NoRefreshToken                 bool // true turns refresh tokens off; false leaves the setting
}

// EnvOverrides reads OPKSSH_ISSUER, OPKSSH_CLIENT_ID and OPKSSH_CLIENT_SECRET.
func EnvOverrides(getenv func(string) string) Overrides {
	return Overrides{
		Issuer:       strings.TrimSpace(getenv(EnvIssuer)),
		ClientID:     getenv(EnvClientID),
		ClientSecret: getenv(EnvClientSecret),
	}
}

// With returns c with the fields o sets replaced.
func (c Config) With(o Overrides) Config {
	if o.Issuer != "" {
		c.Issuer = o.Issuer
	}
	if o.ClientID != "" {
		c.ClientID = o.ClientID
	}
	if o.ClientSecret != "" {
		c.ClientSecret = o.ClientSecret
	}
	if len(o.Scopes) > 0 {
		c.Scopes = slices.Clone(o.Scopes)
	}
	if len(o.RedirectURIs) > 0 {
		c.RedirectURIs = slices.Clone(o.RedirectURIs)
	}
	c.NoRefreshToken = c.NoRefreshToken || o.NoRefreshToken
	return c
}

// WithDefaults fills empty scopes and redirect URIs with DefaultScopes and DefaultRedirectURIs.
func (c Config) WithDefaults() Config {
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes()
	}
	if len(c.RedirectURIs) == 0 {
		c.RedirectURIs = DefaultRedirectURIs()
	}
	return c
}

// validName accepts names that are safe and readable as a YAML key and a command-line argument.
func validName(name string) error {
	ok := name != "" && len(name) <= 64
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		ok = ok && (alnum || i > 0 && strings.ContainsRune("._-", r))
	}
	if !ok {
		return fmt.Errorf("provider name %q must be letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit", name)
	}
	return nil
}
