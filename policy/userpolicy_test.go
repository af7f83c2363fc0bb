package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// userBlock enables user policies for corp; lines 6-8 after head.
const userBlock = "user_policies:\n  enabled: true\n  providers: [corp]\n"

func TestParseUserPolicies(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want UserPolicies
	}{
		{"absent", head + okRule, UserPolicies{}},
		{"enabled with the default path", head + userBlock,
			UserPolicies{Enabled: true, Path: DefaultUserPolicyPath, Providers: []string{"corp"}, Pos: Position{"t.yaml", 6}}},
		{"own path", head + userBlock + "  path: .opkssh.yaml\n",
			UserPolicies{Enabled: true, Path: ".opkssh.yaml", Providers: []string{"corp"}, Pos: Position{"t.yaml", 6}}},
		{"disabled needs no providers", head + "user_policies: {enabled: false}\n",
			UserPolicies{Path: DefaultUserPolicyPath, Pos: Position{"t.yaml", 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := mustParse(t, tt.src)
			if !reflect.DeepEqual(pol.UserPolicies, tt.want) {
				t.Errorf("UserPolicies = %+v\nwant %+v", pol.UserPolicies, tt.want)
			}
		})
	}
}

func TestParseUserPoliciesErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"not a mapping", head + "user_policies: true\n", "6: user_policies: expected a mapping"},
		{"missing enabled", head + "user_policies:\n  providers: [corp]\n", "6: user_policies: missing enabled"},
		{"enabled string", head + "user_policies:\n  enabled: \"yes\"\n  providers: [corp]\n", "7: user_policies.enabled: expected true or false"},
		{"missing providers", head + "user_policies:\n  enabled: true\n", "6: user_policies: missing providers"},
		{"providers empty", head + "user_policies:\n  enabled: true\n  providers: []\n", "8: user_policies.providers: is an empty list"},
		{"providers string", head + "user_policies:\n  enabled: true\n  providers: corp\n", "8: user_policies.providers: expected a list, found a string; write [corp]"},
		{"unknown provider", head + "user_policies:\n  enabled: true\n  providers: [crop]\n", "8: user_policies.providers[0]: unknown provider \"crop\" (defined: corp)"},
		{"unknown key", head + userBlock + "  principals: [alice]\n", "9: user_policies: unknown key \"principals\" (known: enabled, path, providers)"},
		{"absolute path", head + userBlock + "  path: /etc/opkssh/user.yaml\n", "9: user_policies.path: \"/etc/opkssh/user.yaml\" is absolute"},
		{"dot-dot path", head + userBlock + "  path: ../bob/policies.yaml\n", "9: user_policies.path: \"../bob/policies.yaml\" must be a plain path below the home"},
		{"dot path", head + userBlock + "  path: ./policies.yaml\n", "9: user_policies.path: \"./policies.yaml\" must be a plain path"},
		{"trailing slash", head + userBlock + "  path: .config/\n", "9: user_policies.path: \".config/\" must be a plain path"},
		{"home itself", head + userBlock + "  path: .\n", "9: user_policies.path: \".\" must be a plain path"},
		{"empty path", head + userBlock + "  path: \"\"\n", "9: user_policies.path: is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, err := Parse("t.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; user_policies %+v", pol.UserPolicies)
			}
			if !strings.Contains(err.Error(), "t.yaml:"+tt.want) {
				t.Errorf("error does not contain %q:\n%v", "t.yaml:"+tt.want, err)
			}
		})
	}
}

func TestUserPoliciesOnceAcrossDropIns(t *testing.T) {
	opts, _ := policyDir(t, head+okRule)
	if err := os.Mkdir(opts.DropInDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(opts.DropInDir, "50-users.yaml"), "version: 1\n"+userBlock, 0o644)
	pol, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !pol.UserPolicies.Enabled || pol.UserPolicies.Pos.File != filepath.Join(opts.DropInDir, "50-users.yaml") {
		t.Fatalf("a drop-in's user_policies: %+v", pol.UserPolicies)
	}
	writeFile(t, filepath.Join(opts.DropInDir, "60-again.yaml"), "version: 1\nuser_policies: {enabled: false}\n", 0o644)
	_, err = Load(opts)
	if err == nil || !strings.Contains(err.Error(), "60-again.yaml:2: user_policies: is already set at "+opts.DropInDir+"/50-users.yaml:2") {
		t.Fatalf("a second user_policies block: %v", err)
	}
}

// TestLoadForPrincipalCarriesUserPolicies checks that a decision from the cached snapshot still
// sees the user_policies setting.
func TestLoadForPrincipalCarriesUserPolicies(t *testing.T) {
	opts, dir := policyDir(t, head+okRule+userBlock)
	cache := filepath.Join(dir, "cache")
	if err := os.Mkdir(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	full, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ { // the first writes the snapshot, the second reads it
		pol, err := LoadForPrincipal(opts, cache, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(pol.UserPolicies, full.UserPolicies) {
			t.Fatalf("round %d: UserPolicies = %+v, want %+v", round, pol.UserPolicies, full.UserPolicies)
		}
	}
	if snaps, _ := filepath.Glob(filepath.Join(cache, "policy-*")); len(snaps) != 1 {
		t.Fatalf("snapshots: %v", snaps)
	}
}

const goodUserFile = `version: 1
identities:
  - email: bob@example.com
    provider: corp
  - sub: "248289761001"   # bob's other account
    provider: ci
`

func TestParseUserFile(t *testing.T) {
	uf, err := ParseUserFile("u.yaml", []byte(goodUserFile), []string{"corp", "ci"})
	if err != nil {
		t.Fatal(err)
	}
	want := &UserFile{Path: "u.yaml", Pos: Position{"u.yaml", 2}, Identities: []Identity{
		{Kind: KindEmail, Value: "bob@example.com", Provider: "corp", Pos: Position{"u.yaml", 3}},
		{Kind: KindSub, Value: "248289761001", Provider: "ci", Pos: Position{"u.yaml", 5}},
	}}
	if !reflect.DeepEqual(uf, want) {
		t.Errorf("got  %+v\nwant %+v", uf, want)
	}
}

func TestParseUserFileErrors(t *testing.T) {
	const start = "version: 1\nidentities:\n"
	tests := []struct{ name, src, want string }{
		{"empty", "", "1: file is empty"},
		{"not a mapping", "- email: a@b.c\n", "1: expected a mapping"},
		{"missing version", "identities:\n  - {email: a@b.c, provider: corp}\n", "1: version: missing"},
		{"version 2", "version: 2\nidentities:\n  - {email: a@b.c, provider: corp}\n", "1: version: must be 1"},
		{"missing identities", "version: 1\n", "1: identities: missing"},
		{"identities empty", "version: 1\nidentities: []\n", "2: identities: is an empty list"},
		{"admin keys", "version: 1\nrules: []\n", "2: unknown key \"rules\" (known: version, identities)"},
		{"principals", "version: 1\nprincipals: [root]\n", "2: unknown key \"principals\" (known: version, identities)"},
		{"group", start + "  - group: admins\n    provider: corp\n", "3: identities[0].group: group identities are not allowed in a user policy"},
		{"email_domain", start + "  - email_domain: example.com\n    provider: corp\n", "3: identities[0].email_domain: email_domain identities are not allowed"},
		{"claim", start + "  - claim: {name: roles, value: x}\n    provider: corp\n", "3: identities[0].claim: claim identities are not allowed"},
		{"missing provider", start + "  - email: bob@example.com\n", "3: identities[0]: missing provider"},
		{"provider not allowed", start + "  - email: bob@example.com\n    provider: ci\n", "4: identities[0].provider: provider \"ci\" is not one that user policies may name (allowed: corp)"},
		{"require", start + "  - email: bob@example.com\n    provider: corp\n    require: {amr: [mfa]}\n", "5: identities[0]: unknown key \"require\""},
		{"bad email", start + "  - email: bob\n    provider: corp\n", "3: identities[0].email: \"bob\" is not an email address"},
		{"two kinds", start + "  - email: bob@example.com\n    sub: x\n    provider: corp\n", "3: identities[0]: has email and sub"},
		{"scalar entry", start + "  - bob@example.com\n", "3: identities[0]: expected a mapping"},
		{"anchor", start + "  - &b {email: bob@example.com, provider: corp}\n", "3: YAML anchor &b"},
		{"two documents", goodUserFile + "---\nversion: 1\n", "7: a second YAML document"},
		{"too large", goodUserFile + "# " + strings.Repeat("x", maxUserFileSize) + "\n", "1: file is larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uf, err := ParseUserFile("u.yaml", []byte(tt.src), []string{"corp"})
			if err == nil {
				t.Fatalf("no error; %+v", uf)
			}
			if uf != nil {
				t.Error("a file was returned with an error")
			}
			if !strings.Contains(err.Error(), "u.yaml:"+tt.want) {
				t.Errorf("error does not contain %q:\n%v", "u.yaml:"+tt.want, err)
			}
		})
	}
}

// twoProviders has corp and ci, and user policies for both unless the test narrows them.
func twoProviders(t *testing.T, userProviders string) *Policy {
	return mustParse(t, head+"  ci:\n    issuer: https://ci.example.com\n    client_ids: [ci]\n"+okRule+
		"user_policies:\n  enabled: true\n  providers: "+userProviders+"\n")
}

func TestEvaluateUserFile(t *testing.T) {
	pol := twoProviders(t, "[corp, ci]")
	uf, err := ParseUserFile("/home/carol/u.yaml", []byte(goodUserFile), pol.UserPolicies.Providers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, provider, claims, reason string
	}{
		{"email", "corp", `{"sub": "b", "email": "Bob@Example.com", "email_verified": true}`, ReasonAllowed},
		{"email not verified", "corp", `{"sub": "b", "email": "bob@example.com", "email_verified": "true"}`, ReasonEmailNotVerified},
		{"someone else", "corp", `{"sub": "m", "email": "mallory@example.com", "email_verified": true}`, ReasonNoMatchingIdentity},
		{"sub of the other provider", "corp", `{"sub": "248289761001"}`, ReasonNoMatchingIdentity},
		{"sub", "ci", `{"sub": "248289761001"}`, ReasonAllowed},
		{"email entry is for corp only", "ci", `{"sub": "x", "email": "bob@example.com", "email_verified": true}`, ReasonNoMatchingIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pol.EvaluateUserFile(uf, "carol", tt.provider, claims(t, tt.claims))
			if d.Reason != tt.reason || d.Allowed != (tt.reason == ReasonAllowed) {
				t.Fatalf("decision %+v, want %s", d, tt.reason)
			}
			if d.Allowed {
				if d.Rule.Pos != (Position{"/home/carol/u.yaml", 2}) || !reflect.DeepEqual(d.Rule.Principals, []string{"carol"}) || d.Rule.Provider != tt.provider {
					t.Errorf("rule %+v", d.Rule)
				}
				if len(d.Explain) != 1 || !strings.HasPrefix(d.Explain[0], "allowed by rule at /home/carol/u.yaml:2: ") {
					t.Errorf("explain %q", d.Explain)
				}
			}
		})
	}
	narrow := twoProviders(t, "[corp]")
	if d := narrow.EvaluateUserFile(uf, "carol", "ci", claims(t, `{"sub": "248289761001"}`)); d.Allowed {
		t.Errorf("a provider user policies may not name allowed: %+v", d)
	}
}

func TestUserFileMayGrant(t *testing.T) {
	pol := twoProviders(t, "[corp]")
	pol.Deny = []Identity{{Kind: KindEmail, Value: "mallory@example.com"}}
	bob := claims(t, `{"sub": "b", "email": "bob@example.com", "email_verified": true}`)
	mallory := claims(t, `{"sub": "m", "email": "mallory@example.com", "email_verified": true}`)
	tests := []struct {
		name      string
		pol       *Policy
		principal string
		provider  string
		c         Claims
		want      bool
	}{
		{"no rule for the principal", pol, "carol", "corp", bob, true},
		{"no rule matches", pol, "root", "corp", bob, true},
		{"a rule allows", pol, "root", "corp", claims(t, `{"sub": "a", "email": "alice@example.com", "email_verified": true}`), false},
		{"deny list", pol, "carol", "corp", mallory, false},
		{"provider not listed", pol, "carol", "ci", bob, false},
		{"unknown provider", pol, "carol", "nope", bob, false},
		{"invalid principal", pol, "-x", "corp", bob, false},
		{"disabled", mustParse(t, head+okRule+"user_policies: {enabled: false, providers: [corp]}\n"), "carol", "corp", bob, false},
		{"absent", mustParse(t, head+okRule), "carol", "corp", bob, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.pol.Evaluate(tt.principal, tt.provider, tt.c)
			if got := tt.pol.UserFileMayGrant(d, tt.provider); got != tt.want {
				t.Errorf("UserFileMayGrant after %s = %v, want %v", d.Reason, got, tt.want)
			}
		})
	}
}

// testAccount makes a home directory for a test account. The account is the test's own user, or
// when the test runs as root uid 4242 with root owning the files (user policies accept root as
// owner too), so that the checks pass either way.
func testAccount(t *testing.T) UserAccount {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	uid := os.Getuid()
	if uid == 0 {
		uid = 4242
	}
	return UserAccount{Name: "carol", UID: uid, Home: home}
}

// putUserFile writes the default user file below acct's home, with directories mode 0755.
func putUserFile(t *testing.T, acct UserAccount, content string) string {
	t.Helper()
	path := filepath.Join(acct.Home, DefaultUserPolicyPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, content, 0o644)
	return path
}

func TestLoadUserFile(t *testing.T) {
	pol := mustParse(t, head+okRule+userBlock)
	t.Run("good", func(t *testing.T) {
		acct := testAccount(t)
		path := putUserFile(t, acct, "version: 1\nidentities: [{email: bob@example.com, provider: corp}]\n")
		uf, err := pol.LoadUserFile(acct)
		if err != nil || uf.Path != path || len(uf.Identities) != 1 {
			t.Fatalf("%+v %v", uf, err)
		}
	})
	// The cases where there is nothing to read: no error for the user, whatever the path is like.
	none := map[string]func(t *testing.T, acct UserAccount){
		"missing file":      func(t *testing.T, acct UserAccount) { os.MkdirAll(filepath.Join(acct.Home, ".config/opkssh"), 0o755) },
		"missing directory": func(t *testing.T, acct UserAccount) {},
		"missing home":      func(t *testing.T, acct UserAccount) { os.Remove(acct.Home) },
		".config is a file": func(t *testing.T, acct UserAccount) { writeFile(t, filepath.Join(acct.Home, ".config"), "x", 0o644) },
		"unsafe directory but no file": func(t *testing.T, acct UserAccount) {
			os.MkdirAll(filepath.Join(acct.Home, ".config/opkssh"), 0o755)
			os.Chmod(filepath.Join(acct.Home, ".config"), 0o777)
		},
		"symlinked .config without the file": func(t *testing.T, acct UserAccount) {
			os.Mkdir(filepath.Join(acct.Home, "dotfiles"), 0o755)
			os.Symlink("dotfiles", filepath.Join(acct.Home, ".config"))
		},
	}
	for name, prepare := range none {
		t.Run(name, func(t *testing.T) {
			acct := testAccount(t)
			prepare(t, acct)
			uf, err := pol.LoadUserFile(acct)
			if !errors.Is(err, ErrNoUserFile) || uf != nil {
				t.Fatalf("got %+v, %v; want ErrNoUserFile", uf, err)
			}
		})
	}
	t.Run("root is never read", func(t *testing.T) {
		acct := testAccount(t)
		putUserFile(t, acct, "garbage")
		acct.UID, acct.Name = 0, "root"
		if _, err := pol.LoadUserFile(acct); !errors.Is(err, ErrNoUserFile) || !strings.Contains(err.Error(), "never read for uid 0") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		acct := testAccount(t)
		putUserFile(t, acct, "garbage")
		off := mustParse(t, head+okRule+"user_policies: {enabled: false}\n")
		if _, err := off.LoadUserFile(acct); !errors.Is(err, ErrNoUserFile) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("symlinked .config with the file", func(t *testing.T) {
		acct := testAccount(t)
		os.MkdirAll(filepath.Join(acct.Home, "dotfiles/opkssh"), 0o755)
		writeFile(t, filepath.Join(acct.Home, "dotfiles/opkssh/policies.yaml"), goodUserFile, 0o644)
		os.Symlink("dotfiles", filepath.Join(acct.Home, ".config"))
		_, err := pol.LoadUserFile(acct)
		if !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), acct.Home+"/.config is a symbolic link") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unsafe directory with the file", func(t *testing.T) {
		acct := testAccount(t)
		path := putUserFile(t, acct, goodUserFile)
		os.Chmod(filepath.Dir(path), 0o775)
		_, err := pol.LoadUserFile(acct)
		if !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), filepath.Dir(path)+" is writable by group or others (mode 0775") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("home writable by others", func(t *testing.T) {
		acct := testAccount(t)
		putUserFile(t, acct, goodUserFile)
		os.Chmod(acct.Home, 0o757)
		if _, err := pol.LoadUserFile(acct); !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), acct.Home+" is writable") {
			t.Fatalf("err = %v", err)
		}
	})
	// Root may search and read anything: as root these two re-run themselves as an unprivileged user.
	t.Run("directory the verify user may not search", func(t *testing.T) {
		if os.Getuid() == 0 {
			runUnprivileged(t)
			return
		}
		acct := testAccount(t)
		path := putUserFile(t, acct, goodUserFile)
		os.Chmod(filepath.Dir(path), 0o600)
		defer os.Chmod(filepath.Dir(path), 0o755)
		if _, err := pol.LoadUserFile(acct); !errors.Is(err, ErrNoUserFile) || !strings.Contains(err.Error(), "may not search "+filepath.Dir(path)) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("file the verify user may not read", func(t *testing.T) {
		if os.Getuid() == 0 {
			runUnprivileged(t)
			return
		}
		acct := testAccount(t)
		path := putUserFile(t, acct, goodUserFile)
		os.Chmod(path, 0o200)
		if _, err := pol.LoadUserFile(acct); !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), path+" exists but the verify user") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		acct := testAccount(t)
		putUserFile(t, acct, goodUserFile+"# "+strings.Repeat("x", maxUserFileSize)+"\n")
		if _, err := pol.LoadUserFile(acct); !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), "larger than 64 KiB") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("provider not allowed", func(t *testing.T) {
		acct := testAccount(t)
		path := putUserFile(t, acct, goodUserFile) // names ci
		_, err := pol.LoadUserFile(acct)
		if err == nil || !strings.Contains(err.Error(), path+":6: identities[1].provider: provider \"ci\" is not one") {
			t.Fatalf("err = %v", err)
		}
	})
}
