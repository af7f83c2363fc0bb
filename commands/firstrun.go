package commands

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/firstrun"
	"github.com/opkssh-team/opkssh/provider"
)

// firstRun is "opkssh login" with no OP configured at all: no provider in the configuration
// file, none named, no --issuer. On a terminal it asks which preset to add (internal/firstrun),
// adds it as the default provider and returns its name for the login to go on with; otherwise it
// fails with the "opkssh provider add" commands that would set one up.
func firstRun(cmd *cobra.Command, file *provider.ConfigFile) (string, error) {
	path, pathErr := provider.ConfigPath(os.Getenv)
	if pathErr != nil || !isTerminal(cmd.InOrStdin()) || !isTerminal(cmd.ErrOrStderr()) {
		return "", errNoProvider(file.Path)
	}
	c, err := firstrun.Ask(cmd.InOrStdin(), cmd.ErrOrStderr())
	if errors.Is(err, firstrun.ErrCancelled) {
		return "", errNoProvider(file.Path)
	}
	if err != nil {
		return "", err
	}
	added, err := provider.AddProvider(cmd.Context(), path, c.Name, c.Entry,
		provider.AddOptions{Default: true, Entra: provider.EntraResolver{Authority: provider.EntraAuthority}})
	if err != nil {
		return "", fmt.Errorf("%w; or add it with one of these commands:\n  %s", err, strings.Join(firstrun.Commands(), "\n  "))
	}
	printAdded(cmd.ErrOrStderr(), c.Name, path, added)
	return c.Name, nil
}

// errNoProvider says how to set up a first provider.
func errNoProvider(path string) error {
	return fmt.Errorf(`no OpenID Provider is configured yet (%s names none). Add yours once, with the client ID registered for opkssh at it (docs/providers.md says how to register one), e.g. one of:
  %s
and run "opkssh login" again (the first provider added is the default). Or name the OP for one login: opkssh login --issuer URL --client-id ID`,
		path, strings.Join(firstrun.Commands(), "\n  "))
}
