package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/provider"
)

func newProviderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "List, add and remove the OpenID Providers you log in with",
		Long: `Manage the providers of the client configuration file, $XDG_CONFIG_HOME/opkssh/config.yaml
(by default ~/.config/opkssh/config.yaml), so that "opkssh login NAME" or plain "opkssh login"
replaces a line of flags.

Presets need only the client ID you registered at the OP:
` + presetHelp() + `
The file is plain YAML and may be edited by hand; "provider add", "remove" and "default" keep
your comments.`,
		Example: `  opkssh provider add google --preset google --client-id 1234.apps.googleusercontent.com --client-secret S
  opkssh provider add work --preset microsoft --tenant contoso.onmicrosoft.com --client-id 7a1b0c2d-…
  opkssh provider add corp --issuer https://sso.example.com/realms/main --client-id opkssh --default
  opkssh provider list
  opkssh provider default work
  opkssh provider remove corp`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newProviderListCmd(), newProviderAddCmd(), newProviderRemoveCmd(), newProviderDefaultCmd())
	return cmd
}

func presetHelp() string {
	var b strings.Builder
	for _, p := range provider.Presets() {
		fmt.Fprintf(&b, "  %-10s %s\n", p.Name, p.Description)
	}
	return b.String()
}

func newProviderListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the configured providers; * marks the default",
		Long: `List the providers of the configuration file; * marks the default. --json prints the same for
scripts (whether a client secret is set, never the secret).`,
		Example: `  opkssh provider list
  opkssh provider list --json | jq -r '.providers[].name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := loadClientConfig(os.Getenv)
			if err != nil {
				return err
			}
			l := listProviders(file)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			printProviders(cmd.OutOrStdout(), l)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// providerListing is what "opkssh provider list" shows.
type providerListing struct {
	Path      string          `json:"path"`
	Default   string          `json:"default,omitempty"`
	Providers []providerEntry `json:"providers"`
}

type providerEntry struct {
	Name      string `json:"name"`
	Default   bool   `json:"default"`
	Preset    string `json:"preset,omitempty"`
	Issuer    string `json:"issuer,omitempty"`
	ClientID  string `json:"client_id"`
	HasSecret bool   `json:"client_secret_set"`
	Error     string `json:"error,omitempty"` // the entry does not resolve to a usable configuration
}

func listProviders(file *provider.ConfigFile) providerListing {
	l := providerListing{Path: file.Path, Default: file.Default, Providers: []providerEntry{}}
	for _, name := range file.Names() {
		e := file.Providers[name]
		p := providerEntry{Name: name, Default: name == file.Default, Preset: e.Preset, ClientID: e.ClientID}
		if cfg, err := file.Provider(name); err != nil {
			p.Error = err.Error()
		} else {
			p.Issuer, p.HasSecret = cfg.Issuer, cfg.ClientSecret != ""
		}
		l.Providers = append(l.Providers, p)
	}
	return l
}

func printProviders(out io.Writer, l providerListing) {
	if len(l.Providers) == 0 {
		fmt.Fprintf(out, "No providers in %s; add one with \"opkssh provider add NAME --preset P --client-id ID\".\n", l.Path)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tISSUER\tCLIENT ID\tSECRET")
	for _, p := range l.Providers {
		mark, issuer, secret := " ", p.Issuer, "no"
		if p.Default {
			mark = "*"
		}
		if p.Error != "" {
			issuer = "error: " + p.Error
		}
		if p.HasSecret {
			secret = "yes"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", mark, p.Name, issuer, p.ClientID, secret)
	}
	tw.Flush()
	fmt.Fprintf(out, "(from %s)\n", l.Path)
}

func newProviderAddCmd() *cobra.Command {
	var (
		e      provider.Entry
		scopes string
		opts   = provider.AddOptions{Entra: provider.EntraResolver{Authority: provider.EntraAuthority}}
	)
	cmd := &cobra.Command{
		Use:   "add NAME --preset PRESET --client-id ID",
		Short: "Add a provider to the configuration file",
		Long: `Add a provider to the configuration file, which is created (mode 0600) if missing. The first
provider added becomes the default; --default makes a later one the default.

Presets: ` + strings.Join(provider.PresetNames(), ", ") + ` (see "opkssh provider --help").

With --preset microsoft, --tenant is your directory (tenant) ID or one of its verified domains. A
domain is looked up once, in the tenant's discovery document at
https://login.microsoftonline.com/DOMAIN/v2.0/.well-known/openid-configuration, and the file keeps
the tenant ID, because the issuer of Entra's tokens names the ID, never the domain.

It prints the provider block the servers' policies.yaml needs to accept these logins.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e.Scopes = strings.Fields(scopes)
			if e.Preset == "generic" {
				e.Preset = "" // the default; keep the file short
			}
			path, err := provider.ConfigPath(os.Getenv)
			if err != nil {
				return err
			}
			added, err := provider.AddProvider(cmd.Context(), path, args[0], e, opts)
			if err != nil {
				return err
			}
			printAdded(cmd.OutOrStdout(), args[0], path, added)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&e.Preset, "preset", "generic", "one of "+strings.Join(provider.PresetNames(), ", "))
	fl.StringVar(&e.ClientID, "client-id", "", "client ID registered for opkssh at the OP (required)")
	fl.StringVar(&e.ClientSecret, "client-secret", "", "client secret, for OPs that treat desktop apps as confidential clients")
	fl.StringVar(&e.Issuer, "issuer", "", "issuer URL (required for generic; overrides the preset's)")
	fl.StringVar(&e.Tenant, "tenant", "", "Microsoft tenant: directory ID, or a verified domain that is looked up once (microsoft preset)")
	fl.StringVar(&scopes, "scopes", "", "space-separated scopes to request instead of the preset's")
	fl.StringSliceVar(&e.RedirectURIs, "redirect-uri", nil, "loopback redirect URIs to try instead of the defaults")
	fl.BoolVar(&opts.Default, "default", false, "make this the default provider")
	return cmd
}

// printAdded reports what "provider add" wrote and the policy block that lets servers accept it.
func printAdded(w io.Writer, name, path string, added provider.Added) {
	if t := added.Tenant; t != nil && t.Domain != "" {
		fmt.Fprintf(w, "%s is tenant %s; issuer %s\n", t.Domain, t.ID, t.Issuer)
	}
	fmt.Fprintf(w, "Added provider %s (issuer %s) to %s.\n", name, added.Config.Issuer, path)
	if added.Default {
		fmt.Fprintf(w, "It is the default: \"opkssh login\" uses it.\n")
	} else {
		fmt.Fprintf(w, "Log in with \"opkssh login %s\".\n", name)
	}
	fmt.Fprintf(w, "Servers accept these logins with a provider like this in %s:\n", DefaultPolicyPath)
	w.Write(policySnippet(name, added.Config))
	if t := added.Tenant; t != nil {
		fmt.Fprintf(w, "(To accept users of several tenants: issuer %s with tenants: [%s, …]; see docs/providers.md.)\n",
			strings.Replace(t.Issuer, t.ID, "{tenantid}", 1), t.ID)
	}
}

// policySnippet renders the providers: block of policies.yaml for cfg, indented by two spaces.
func policySnippet(name string, cfg provider.Config) []byte {
	type block struct {
		Issuer    string   `yaml:"issuer"`
		ClientIDs []string `yaml:"client_ids,flow"`
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	doc := map[string]map[string]block{"providers": {name: {Issuer: cfg.Issuer, ClientIDs: []string{cfg.ClientID}}}}
	if err := enc.Encode(doc); err != nil {
		return nil // plain strings always encode
	}
	enc.Close()
	var out []byte
	for _, line := range bytes.SplitAfter(buf.Bytes(), []byte("\n")) {
		if len(line) > 0 {
			out = append(append(out, "  "...), line...)
		}
	}
	return out
}
