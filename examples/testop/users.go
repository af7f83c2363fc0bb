package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/testop"
)

// userEntry is one user of the --users file.
type userEntry struct {
	Subject       string         `yaml:"subject"`
	Email         string         `yaml:"email"`
	EmailVerified bool           `yaml:"email_verified"`
	Name          string         `yaml:"name"`
	Groups        []string       `yaml:"groups"`
	AMR           []string       `yaml:"amr"`
	Extra         map[string]any `yaml:"extra"`
	Password      string         `yaml:"password"`
	Tenant        string         `yaml:"tenant"`
}

// loadUsers reads a YAML list of users. Unknown keys are errors, so a typo
// such as "email_verfied" cannot silently leave a user unverified.
func loadUsers(path string) ([]testop.User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var entries []userEntry
	if err := dec.Decode(&entries); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("users file %s: empty, want a list of users", path)
		}
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("users file %s: empty list, want at least one user", path)
	}
	users := make([]testop.User, 0, len(entries))
	seen := make(map[string]bool)
	for i, e := range entries {
		if e.Subject == "" {
			return nil, fmt.Errorf("users file %s: user %d (%q) has no subject", path, i+1, e.Email)
		}
		if seen[e.Subject] {
			return nil, fmt.Errorf("users file %s: subject %q appears twice", path, e.Subject)
		}
		seen[e.Subject] = true
		users = append(users, testop.User(e))
	}
	return users, nil
}

// demoUsers are the users when no --users file is given.
func demoUsers() []testop.User {
	return []testop.User{
		{
			Subject:       "alice",
			Email:         "alice@example.com",
			EmailVerified: true,
			Name:          "Alice Example",
			Groups:        []string{"ssh-users", "admins"},
			AMR:           []string{"pwd", "mfa"},
			Password:      "password",
		},
		{
			Subject:       "bob",
			Email:         "bob@example.com",
			EmailVerified: true,
			Name:          "Bob Example",
			Groups:        []string{"ssh-users"},
			AMR:           []string{"pwd"},
			Password:      "password",
		},
	}
}
