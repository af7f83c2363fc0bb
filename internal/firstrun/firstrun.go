// Package firstrun gives direction to a user whose opkssh knows no OpenID Provider yet: "opkssh
// login" with no configuration file, no provider and no --issuer. Without a terminal it lists one
// "opkssh provider add --preset …" command per preset (Commands); on a terminal it asks which
// preset, and the few values that preset needs (Ask), and the caller adds the provider as the
// default and goes on with the login.
//
// opkssh ships no client ID of its own: each user's organisation registers opkssh at its OP (see
// docs/providers.md), so the questions always include the client ID.
package firstrun

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/opkssh-team/opkssh/provider"
)

// examples are the "provider add" arguments each preset needs, with placeholders.
var examples = map[string]string{
	"google":    "google --preset google --client-id ID.apps.googleusercontent.com --client-secret SECRET",
	"microsoft": "work --preset microsoft --tenant TENANT-ID-OR-DOMAIN --client-id ID",
	"gitlab":    "gitlab --preset gitlab --client-id ID",
	"generic":   "corp --preset generic --issuer https://sso.example.com/realms/main --client-id ID",
}

// Commands are one "opkssh provider add" command per preset, in provider.Presets order.
func Commands() []string {
	var cmds []string
	for _, p := range provider.Presets() {
		args, ok := examples[p.Name]
		if !ok {
			args = p.Name + " --preset " + p.Name + " --client-id ID"
		}
		cmds = append(cmds, "opkssh provider add "+args)
	}
	return cmds
}

// Choice is what the user answered: the provider to add, by name, and its entry.
type Choice struct {
	Name  string
	Entry provider.Entry
}

// ErrCancelled means the user chose to quit, or input ended.
var ErrCancelled = errors.New("cancelled")

// Ask shows the presets on out and reads the user's answers from in, line by line.
func Ask(in io.Reader, out io.Writer) (Choice, error) {
	presets := provider.Presets()
	r := bufio.NewReader(in)
	fmt.Fprintln(out, "No OpenID Provider is configured yet. Which kind do you log in with?")
	for i, p := range presets {
		fmt.Fprintf(out, "  %d) %-10s %s\n", i+1, p.Name, p.Description)
	}
	var preset provider.Preset
	for {
		answer, err := ask(r, out, fmt.Sprintf("Choose 1-%d (q to quit): ", len(presets)))
		if err != nil {
			return Choice{}, err
		}
		if answer == "q" {
			return Choice{}, ErrCancelled
		}
		if n, err := strconv.Atoi(answer); err == nil && n >= 1 && n <= len(presets) {
			preset = presets[n-1]
			break
		}
		if p, ok := provider.LookupPreset(answer); ok {
			preset = p
			break
		}
		fmt.Fprintf(out, "%q is not one of the choices.\n", answer)
	}
	c := Choice{Name: preset.Name, Entry: provider.Entry{Preset: preset.Name}}
	var err error
	switch preset.Name {
	case "generic":
		c.Name = "corp"
		c.Entry.Preset = ""
		if c.Entry.Issuer, err = required(r, out, "Issuer URL, exactly as in the OP's tokens (e.g. https://sso.example.com/realms/main): "); err != nil {
			return Choice{}, err
		}
	case "microsoft":
		c.Name = "work"
		if c.Entry.Tenant, err = required(r, out, "Tenant: the directory (tenant) ID, or a verified domain of it: "); err != nil {
			return Choice{}, err
		}
	}
	if c.Entry.ClientID, err = required(r, out, "Client ID registered for opkssh at the OP: "); err != nil {
		return Choice{}, err
	}
	if c.Entry.ClientSecret, err = ask(r, out, "Client secret (Enter for none; Google's desktop clients have one): "); err != nil {
		return Choice{}, err
	}
	name, err := ask(r, out, fmt.Sprintf("Name for this provider [%s]: ", c.Name))
	if err != nil {
		return Choice{}, err
	}
	if name != "" {
		c.Name = name
	}
	return c, nil
}

// required asks until the answer is not empty.
func required(r *bufio.Reader, out io.Writer, prompt string) (string, error) {
	for {
		answer, err := ask(r, out, prompt)
		if err != nil || answer != "" {
			return answer, err
		}
	}
}

// ask prints prompt and reads one line, trimmed. End of input cancels.
func ask(r *bufio.Reader, out io.Writer, prompt string) (string, error) {
	fmt.Fprint(out, prompt)
	line, err := r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		fmt.Fprintln(out)
		if err == io.EOF {
			return "", ErrCancelled
		}
		return "", err
	}
	return strings.TrimSpace(line), nil
}
