package commands

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/provider"
)

func newProviderRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a provider from the configuration file",
		Long: `Remove a provider from the configuration file; the other entries and your comments stay. If it
was the default, the file has no default afterwards: "opkssh login" then needs a provider name
until "opkssh provider default NAME" sets one. Keys and certificates already written stay valid
until they expire; "opkssh logout" removes them.`,
		Example:           `  opkssh provider remove corp`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeProviderArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := provider.ConfigPath(os.Getenv)
			if err != nil {
				return err
			}
			res, err := provider.RemoveProvider(path, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Removed provider %s from %s.\n", args[0], path)
			if res.WasDefault {
				fmt.Fprintln(out, "It was the default; choose another with \"opkssh provider default NAME\".")
			}
			return nil
		},
	}
}

func newProviderDefaultCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "default NAME",
		Short:             "Make a configured provider the default for \"opkssh login\"",
		Example:           `  opkssh provider default work`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeProviderArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := provider.ConfigPath(os.Getenv)
			if err != nil {
				return err
			}
			if err := provider.SetDefault(path, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Default provider: %s (in %s); \"opkssh login\" uses it.\n", args[0], path)
			return nil
		},
	}
}
