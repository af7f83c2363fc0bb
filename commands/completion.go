package commands

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/provider"
)

// keyTypes are the values of --key-type.
var keyTypes = []string{"ecdsa\tP-256 (the default)", "ed25519"}

// registerCompletions teaches shell completion ("opkssh completion bash|zsh|fish|powershell")
// the values opkssh knows: the providers of the configuration file (login's argument,
// --provider, provider remove/default), the presets (--preset) and the key types (--key-type).
// It goes by flag name over the whole tree, so every command that takes one of these flags
// completes it the same way.
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		fixed := func(values []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
				return values, cobra.ShellCompDirectiveNoFileComp
			}
		}
		for flag, complete := range map[string]func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective){
			"key-type": fixed(keyTypes),
			"preset":   fixed(presetCompletions()),
			"provider": completeProviderNames,
		} {
			if c.Flags().Lookup(flag) != nil {
				if _, ok := c.GetFlagCompletionFunc(flag); !ok {
					_ = c.RegisterFlagCompletionFunc(flag, complete) // fails only if registered already
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if login, _, err := root.Find([]string{"login"}); err == nil && login.ValidArgsFunction == nil {
		login.ValidArgsFunction = completeProviderArg
	}
}

func presetCompletions() []string {
	var out []string
	for _, p := range provider.Presets() {
		out = append(out, p.Name+"\t"+p.Description)
	}
	return out
}

// completeProviderArg completes a command's one argument, a provider name.
func completeProviderArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeProviderNames(cmd, args, toComplete)
}

// completeProviderNames completes with the names of the configuration file's providers, the
// default first.
func completeProviderNames(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	file, err := loadClientConfig(os.Getenv)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, name := range file.Names() {
		desc := file.Providers[name].Issuer
		if desc == "" {
			desc = file.Providers[name].Preset
		}
		if name == file.Default {
			desc = strings.TrimSpace("default " + desc)
			out = append([]string{name + "\t" + desc}, out...)
			continue
		}
		out = append(out, name+"\t"+desc)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
