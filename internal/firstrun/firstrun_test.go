package firstrun

import (
	"errors"
	"strings"
	"testing"

	"github.com/opkssh-team/opkssh/provider"
)

func TestCommands(t *testing.T) {
	cmds := Commands()
	presets := provider.Presets()
	if len(cmds) != len(presets) {
		t.Fatalf("%d commands for %d presets", len(cmds), len(presets))
	}
	for i, p := range presets {
		if !strings.HasPrefix(cmds[i], "opkssh provider add ") || !strings.Contains(cmds[i], "--preset "+p.Name+" ") || !strings.Contains(cmds[i], "--client-id") {
			t.Errorf("command for %s: %q", p.Name, cmds[i])
		}
	}
}

func TestAsk(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        Choice
	}{
		{"google by number, default name", "1\nID.apps.googleusercontent.com\nS3CRET\n\n",
			Choice{Name: "google", Entry: provider.Entry{Preset: "google", ClientID: "ID.apps.googleusercontent.com", ClientSecret: "S3CRET"}}},
		{"microsoft by name, a wrong answer first", "9\nmicrosoft\ncontoso.onmicrosoft.com\n7a1b\n\nwork2\n",
			Choice{Name: "work2", Entry: provider.Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "7a1b"}}},
		{"generic asks for the issuer until given", "4\n\nhttps://sso.example.com\n\nopkssh\n\n\n",
			Choice{Name: "corp", Entry: provider.Entry{Issuer: "https://sso.example.com", ClientID: "opkssh"}}},
		{"last line without a newline", "3\nID\n\nlab",
			Choice{Name: "lab", Entry: provider.Entry{Preset: "gitlab", ClientID: "ID"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			got, err := Ask(strings.NewReader(tc.input), &out)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.want.Name || got.Entry.Preset != tc.want.Entry.Preset || got.Entry.Tenant != tc.want.Entry.Tenant ||
				got.Entry.Issuer != tc.want.Entry.Issuer || got.Entry.ClientID != tc.want.Entry.ClientID || got.Entry.ClientSecret != tc.want.Entry.ClientSecret {
				t.Fatalf("Ask = %+v, want %+v", got, tc.want)
			}
			if !strings.Contains(out.String(), "  1) google ") || !strings.Contains(out.String(), "Client ID registered for opkssh at the OP: ") {
				t.Fatalf("shown:\n%s", out.String())
			}
		})
	}
	for _, input := range []string{"q\n", "", "1\n"} {
		var out strings.Builder
		if _, err := Ask(strings.NewReader(input), &out); !errors.Is(err, ErrCancelled) {
			t.Errorf("input %q: %v, want ErrCancelled", input, err)
		}
	}
	var out strings.Builder
	Ask(strings.NewReader("9\nq\n"), &out)
	if !strings.Contains(out.String(), `"9" is not one of the choices.`) {
		t.Errorf("a wrong choice is not explained:\n%s", out.String())
	}
}
