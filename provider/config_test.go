package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/home/a"}, "/home/a/.config/opkssh/config.yaml"},
		{map[string]string{"HOME": "/home/a", "XDG_CONFIG_HOME": "/xdg"}, "/xdg/opkssh/config.yaml"},
		{map[string]string{"HOME": "/home/a", "XDG_CONFIG_HOME": "relative"}, "/home/a/.config/opkssh/config.yaml"},
	} {
		got, err := ConfigPath(env(tc.env))
		if err != nil || got != tc.want {
			t.Errorf("ConfigPath(%v) = %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	if _, err := ConfigPath(env(nil)); err == nil {
		t.Error("ConfigPath without HOME: no error")
	}
}

func TestEntryConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entry   Entry
		issuer  string
		scopes  string
		wantErr string
	}{
		{"google", Entry{Preset: "google", ClientID: "x"}, "https://accounts.google.com", "openid email profile", ""},
		{"microsoft", Entry{Preset: "microsoft", Tenant: "B4E1C2D3-5F6A-4B7C-8D9E-0A1B2C3D4E5F", ClientID: "x"}, "https://login.microsoftonline.com/b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f/v2.0", "openid email profile", ""},
		{"microsoft domain", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "x"}, "", "", `tenant "contoso.onmicrosoft.com" is a domain name, but the issuer of Entra's tokens names the directory (tenant) ID`},
		{"microsoft explicit issuer", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", Issuer: "https://login.microsoftonline.us/b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f/v2.0", ClientID: "x"}, "https://login.microsoftonline.us/b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f/v2.0", "openid email profile", ""},
		{"microsoft without tenant", Entry{Preset: "microsoft", ClientID: "x"}, "", "", "needs a tenant"},
		{"microsoft common", Entry{Preset: "microsoft", Tenant: "common", ClientID: "x"}, "", "", "multi-tenant alias"},
		{"microsoft bad tenant", Entry{Preset: "microsoft", Tenant: "a/b", ClientID: "x"}, "", "", "must be a directory (tenant) ID"},
		{"gitlab", Entry{Preset: "gitlab", ClientID: "x"}, "https://gitlab.com", "openid email profile", ""},
		{"gitlab self-managed", Entry{Preset: "gitlab", Issuer: "https://git.example.com", ClientID: "x"}, "https://git.example.com", "openid email profile", ""},
		{"generic", Entry{Issuer: "https://sso.example.com", ClientID: "x", Scopes: []string{"openid", "groups"}}, "https://sso.example.com", "openid groups", ""},
		{"generic without issuer", Entry{Preset: "generic", ClientID: "x"}, "", "", "needs an issuer"},
		{"tenant elsewhere", Entry{Preset: "google", Tenant: "t", ClientID: "x"}, "", "", "only the microsoft preset"},
		{"unknown preset", Entry{Preset: "okta", ClientID: "x"}, "", "", `unknown preset "okta": use one of google, microsoft, gitlab, generic`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.entry.Config()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != tc.issuer || strings.Join(cfg.Scopes, " ") != tc.scopes || cfg.ClientID != "x" {
				t.Fatalf("got %+v", cfg)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"providers:\n  a:\n    issuer: https://x\n    clientid: y\n", "c.yaml: line 4: field clientid is not a provider setting"},
		{"default: b\nproviders:\n  a:\n    issuer: https://x\n    client_id: y\n", `default "b" is not one of the providers (a)`},
		{"providers:\n  'a b':\n    client_id: y\n", `provider name "a b" must be`},
		{"- a\n", "c.yaml: line 1: cannot unmarshal"},
	} {
		_, err := ParseConfig("c.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	f, err := ParseConfig("c.yaml", nil)
	if err != nil || len(f.Providers) != 0 {
		t.Fatalf("empty file: %v %+v", err, f)
	}
	if _, err := f.Provider("corp"); !errors.Is(err, ErrNoSuchProvider) || !strings.Contains(err.Error(), "it defines none") {
		t.Fatalf("Provider on empty file: %v", err)
	}
}

func TestOverrides(t *testing.T) {
	base := Config{Issuer: "https://a", ClientID: "a", ClientSecret: "s", Scopes: []string{"openid"}}
	got := base.With(EnvOverrides(func(k string) string {
		return map[string]string{EnvIssuer: " https://b ", EnvClientID: "b"}[k]
	})).With(Overrides{ClientID: "c"})
	if got.Issuer != "https://b" || got.ClientID != "c" || got.ClientSecret != "s" || len(got.Scopes) != 1 {
		t.Fatalf("got %+v", got)
	}
	if d := (Config{}).WithDefaults(); len(d.Scopes) != 3 || len(d.RedirectURIs) != 3 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestAddProviderKeepsComments(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "opkssh", "config.yaml")
	added, err := AddProvider(ctx, path, "corp", Entry{Issuer: "https://sso.example.com", ClientID: "opkssh"}, AddOptions{})
	if err != nil || !added.Default || added.Tenant != nil || added.Config.Issuer != "https://sso.example.com" {
		t.Fatalf("added %+v, %v", added, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	f, err := LoadConfig(path)
	if err != nil || f.Default != "corp" {
		t.Fatalf("the first provider becomes the default: %+v %v", f, err)
	}

	withComments := "# my opkssh providers\ndefault: corp # used by plain login\n\nproviders:\n  # the company SSO\n  corp:\n    issuer: https://sso.example.com\n    client_id: opkssh\n"
	if err := os.WriteFile(path, []byte(withComments), 0o644); err != nil {
		t.Fatal(err)
	}
	// A tenant ID needs no lookup, so this uses no network.
	if _, err := AddProvider(ctx, path, "work", Entry{Preset: "microsoft", Tenant: "B4E1C2D3-5F6A-4B7C-8D9E-0A1B2C3D4E5F", ClientID: "abc"}, AddOptions{Default: true}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# my opkssh providers", "default: work # used by plain login\n\nproviders:", "  # the company SSO\n  corp:", "  work:\n    preset: microsoft\n    tenant: b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f\n    client_id: abc\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("edited file lacks %q:\n%s", want, data)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after edit %v, want 0600", fi.Mode().Perm())
	}
	f, err = LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Provider("work")
	if err != nil || cfg.Issuer != "https://login.microsoftonline.com/b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f/v2.0" {
		t.Fatalf("work: %+v %v", cfg, err)
	}

	// An authority that does not parse: a lookup fails without a request.
	noNetwork := AddOptions{Entra: EntraResolver{Authority: "http://[::1"}}
	for _, tc := range []struct {
		name string
		e    Entry
		want string
	}{
		{"corp", Entry{Issuer: "https://x.example.com", ClientID: "y"}, "provider already exists"},
		{"bad", Entry{Preset: "generic", ClientID: "y"}, "needs an issuer"},
		{"plain", Entry{Issuer: "http://sso.example.com", ClientID: "y"}, "only https"},
		// Every other mistake is found before a domain is looked up.
		{"noid", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com"}, "a client ID is required"},
		{"work", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "y"}, "provider already exists"},
		{"ms", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "y", RedirectURIs: []string{"https://example.com/cb"}}, "redirect"},
		{"common", Entry{Preset: "microsoft", Tenant: "organizations", ClientID: "y"}, "multi-tenant alias"},
		{"lookup", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "y"}, `looking up Microsoft tenant "contoso.onmicrosoft.com"`},
	} {
		if _, err := AddProvider(ctx, path, tc.name, tc.e, noNetwork); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add %s %+v: %v, want %q", tc.name, tc.e, err, tc.want)
		}
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(data) {
		t.Fatal("a refused add changed the file")
	}
}

func TestAgentDefault(t *testing.T) {
	f, err := ParseConfig("c.yaml", []byte(`agent: true
providers:
  corp: {issuer: https://sso.example.com, client_id: x}
  lab: {issuer: https://lab.example.com, client_id: x, agent: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"corp": true, "lab": false, "": true, "nosuch": true} {
		if got := f.AgentDefault(name); got != want {
			t.Errorf("AgentDefault(%q) = %v, want %v", name, got, want)
		}
	}
	f, err = ParseConfig("c.yaml", []byte("providers:\n  corp: {issuer: https://sso.example.com, client_id: x, agent: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !f.AgentDefault("corp") || f.AgentDefault("") {
		t.Errorf("provider-only agent: corp %v, none %v; want true, false", f.AgentDefault("corp"), f.AgentDefault(""))
	}
	_, err = ParseConfig("c.yaml", []byte("agent: yes please\n"))
	if err == nil || !strings.Contains(err.Error(), "c.yaml: line 1") {
		t.Errorf("agent: yes please: %v", err)
	}
}
