package policy

import (
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	good := map[string]string{
		"restrict":                                     "restrict",
		"Restrict,No-Pty":                              "restrict,no-pty",
		`command="/usr/local/bin/deploy --prod"`:       `command="/usr/local/bin/deploy --prod"`,
		`command="echo \"hi\""`:                        `command="echo \"hi\""`,
		`from="10.0.0.0/8,!10.1.0.0/16,*.example.com"`: `from="10.0.0.0/8,!10.1.0.0/16,*.example.com"`,
		`permitopen="db.internal:5432"`:                `permitopen="db.internal:5432"`,
		`permitopen="[2001:db8::1]:*"`:                 `permitopen="[2001:db8::1]:*"`,
		`permitlisten="8080"`:                          `permitlisten="8080"`,
		`environment="DEPLOY_ENV=prod"`:                `environment="DEPLOY_ENV=prod"`,
		`expiry-time="20301231"`:                       `expiry-time="20301231"`,
		`expiry-time="203012312359Z"`:                  `expiry-time="203012312359Z"`,
		`tunnel="0"`:                                   `tunnel="0"`,
		`restrict,command="a,b",pty`:                   `restrict,command="a,b",pty`,
	}
	for in, want := range good {
		got, err := ParseOptions([]string{in})
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("%s: %q, %v; want %s", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                                     "is empty",
		"no-such-option":                       "unknown option",
		"cert-authority":                       "set by opkssh verify",
		`principals="root"`:                    "set by opkssh verify",
		"restrict,,pty":                        "empty",
		"restrict,":                            "expected a comma",
		"restrict pty":                         "unknown option",
		`command=/bin/true`:                    "must start with a double quote",
		`command="/bin/true`:                   "no closing double quote",
		`command="a"b`:                         "expected a comma",
		`command`:                              "needs a value",
		`pty="x"`:                              "takes no value",
		`command=""`:                           "is empty",
		`environment="1 X=y"`:                  "variable name",
		`environment="novalue"`:                "NAME=value",
		`expiry-time="2030-12-31"`:             "YYYYMMDD",
		`from="a b"`:                           "pattern",
		`from=""`:                              "empty pattern",
		`permitopen="db"`:                      "host:port",
		`permitopen="db:99999"`:                "host:port",
		`tunnel="x"`:                           "tun device",
		`command="a",command="b"`:              "given twice",
		"command=\"a\x01\"":                    "control character",
		`command="a\"`:                         "no closing double quote",
		`from="x",restrict,from="y"`:           "given twice",
		`command="x" ,pty`:                     "expected a comma",
		strings.Repeat("no-pty,", 700) + "pty": "bytes long",
	}
	for in, want := range bad {
		_, err := ParseOptions([]string{in})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// A bad options entry breaks its rule only: the policy loads, the rule denies with rule_broken,
// and other rules still allow.
func TestBrokenOptionsRule(t *testing.T) {
	pol := mustParse(t, "version: 1\nproviders:\n  corp: {issuer: https://sso.example.com, client_ids: [x]}\nrules:\n"+
		"  - principals: [deploy]\n    provider: corp\n    identities: [{sub: a}]\n    options: [restrict, 'comand=\"x\"']\n"+
		"  - principals: [deploy]\n    provider: corp\n    identities: [{sub: b}]\n    options: [restrict, 'command=\"/usr/local/bin/deploy\"']\n"+
		"  - principals: [deploy]\n    provider: corp\n    identities: [{sub: c}]\n    options: restrict\n")
	if got := pol.BrokenRules(); len(got) != 2 || !strings.Contains(got[0], `t.yaml:5: rules[0].options: option "restrict,comand=\"x\""`) && !strings.Contains(got[0], `unknown option "comand"`) {
		t.Errorf("broken rules: %q", got)
	}
	if d := pol.Evaluate("deploy", "corp", Claims{"sub": "a"}); d.Allowed || d.Reason != ReasonRuleBroken || !strings.Contains(strings.Join(d.Explain, "\n"), `unknown option "comand"`) {
		t.Errorf("broken rule: %+v", d)
	}
	if d := pol.Evaluate("deploy", "corp", Claims{"sub": "c"}); d.Allowed || d.Reason != ReasonRuleBroken {
		t.Errorf("options that are not a list: %+v", d)
	}
	d := pol.Evaluate("deploy", "corp", Claims{"sub": "b"})
	if !d.Allowed || strings.Join(d.Rule.Options, ",") != `restrict,command="/usr/local/bin/deploy"` {
		t.Errorf("good rule: %+v", d)
	}
}

func FuzzParseOptions(f *testing.F) {
	f.Add(`restrict,command="echo \"x\"",from="10.0.0.0/8"`)
	f.Fuzz(func(t *testing.T, s string) {
		opts, err := ParseOptions([]string{s})
		if err != nil {
			return
		}
		// What is accepted reads back the same and holds no byte that could end the options field.
		again, err := ParseOptions(opts)
		if err != nil || strings.Join(again, ",") != strings.Join(opts, ",") {
			t.Fatalf("%q -> %q -> %q, %v", s, opts, again, err)
		}
		line := strings.Join(opts, ",")
		for _, o := range opts {
			if !strings.Contains(o, `"`) && strings.ContainsAny(o, " \t") {
				t.Fatalf("unquoted white space in %q", line)
			}
		}
		if strings.ContainsAny(line, "\n\r\x00") {
			t.Fatalf("line break in %q", line)
		}
	})
}
