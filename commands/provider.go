package commands

import (
	"bytes"
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
	return &cobra.Command{
		Use:   "list",
		Short: "List the configured providers; * marks the default",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := loadClientConfig(os.Getenv)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(file.Providers) == 0 {
				fmt.Fprintf(out, "No providers in %s; add one with \"opkssh provider add NAME --preset P --client-id ID\".\n", file.Path)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  NAME\tISSUER\tCLIENT ID\tSECRET")
			for _, name := range file.Names() {
				mark := " "
				if name == file.Default {
					mark = "*"
				}
				issuer, secret := "", "no"
				if cfg, err := file.Provider(name); err != nil {
					issuer = "error: " + err.Error()
				} else {
					issuer = cfg.Issuer
					if cfg.ClientSecret != "" {
						secret = "yes"
					}
				}
				fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", mark, name, issuer, file.Providers[name].ClientID, secret)
			}
			tw.Flush()
			fmt.Fprintf(out, "(from %s)\n", file.Path)
			return nil
		},
	}
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
