package commands

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/provider"
)

func newProviderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "List and add the OpenID Providers you log in with",
		Long: `Manage the providers of the client configuration file, $XDG_CONFIG_HOME/opkssh/config.yaml
(by default ~/.config/opkssh/config.yaml), so that "opkssh login NAME" or plain "opkssh login"
replaces a line of flags.

Presets need only the client ID you registered at the OP:
` + presetHelp() + `
The file is plain YAML and may be edited by hand; "provider add" keeps your comments.`,
		Example: `  opkssh provider add google --preset google --client-id 1234.apps.googleusercontent.com --client-secret S
  opkssh provider add work --preset microsoft --tenant contoso.onmicrosoft.com --client-id 7a1b0c2d-…
  opkssh provider add corp --issuer https://sso.example.com/realms/main --client-id opkssh --default
  opkssh provider list`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newProviderListCmd(), newProviderAddCmd())
	return cmd
}

func presetHelp() string {
	var b strings.Builder
	for _, p := range provider.Presets {
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
		e           provider.Entry
		scopes      string
		makeDefault bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --preset PRESET --client-id ID",
		Short: "Add a provider to the configuration file",
		Long: `Add a provider to the configuration file, which is created (mode 0600) if missing. The first
provider added becomes the default; --default makes a later one the default.

Presets: ` + strings.Join(provider.PresetNames(), ", ") + ` (see "opkssh provider --help").`,
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
			if err := provider.AddProvider(path, args[0], e, makeDefault); err != nil {
				return err
			}
			file, err := provider.LoadConfig(path)
			if err != nil {
				return err
			}
			cfg, err := file.Provider(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added provider %s (issuer %s) to %s.\n", args[0], cfg.Issuer, path)
			if file.Default == args[0] {
				fmt.Fprintf(cmd.OutOrStdout(), "It is the default: \"opkssh login\" uses it.\n")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Log in with \"opkssh login %s\".\n", args[0])
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&e.Preset, "preset", "generic", "one of "+strings.Join(provider.PresetNames(), ", "))
	fl.StringVar(&e.ClientID, "client-id", "", "client ID registered for opkssh at the OP (required)")
	fl.StringVar(&e.ClientSecret, "client-secret", "", "client secret, for OPs that treat desktop apps as confidential clients")
	fl.StringVar(&e.Issuer, "issuer", "", "issuer URL (required for generic; overrides the preset's)")
	fl.StringVar(&e.Tenant, "tenant", "", "Microsoft tenant: directory ID or verified domain (microsoft preset)")
	fl.StringVar(&scopes, "scopes", "", "space-separated scopes to request instead of the preset's")
	fl.StringSliceVar(&e.RedirectURIs, "redirect-uri", nil, "loopback redirect URIs to try instead of the defaults")
	fl.BoolVar(&makeDefault, "default", false, "make this the default provider")
	return cmd
}
