package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/browser"
	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/certstatus"
	"github.com/opkssh-team/opkssh/internal/session"
	"github.com/opkssh-team/opkssh/internal/sshagent"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/provider"
)

type loginFlags struct {
	issuer, clientID, clientSecret, scopes string
	keyType, keyFile                       string
	lifetime, timeout                      time.Duration
	noBrowser, paste, noQR                 bool
	redirectURIs                           []string
	ifNeeded, quiet, device                bool
	agent, agentOnly                       bool
	noRefreshToken                         bool
	minRemaining                           time.Duration
	forceCommand, sourceAddress            string
	ci                                     bool   // login_ci.go
	idTokenEnv                             string // login_ci.go
	gq                                     bool
}

func newLoginCmd() *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login [PROVIDER] [--issuer URL --client-id ID]",
		Short: "Log in with your OpenID Provider and write an SSH key and certificate",
		Long: `Log in with your OpenID Provider (OP) in the browser and write an SSH key and certificate.

login makes a fresh key pair, runs an authorization-code + PKCE login whose nonce commits to that
key, and packs the OP's signed ID token (as an OpenPubkey PK token) into an SSH certificate signed
by the key itself. ssh picks both files up by default, so afterwards plain "ssh user@host" works on
servers that run "opkssh verify".

Files written (never a private key opkssh did not create):
  ecdsa (default)   ~/.ssh/id_ecdsa     and ~/.ssh/id_ecdsa-cert.pub
  ed25519           ~/.ssh/id_ed25519   and ~/.ssh/id_ed25519-cert.pub
  --key-file PATH   PATH                and PATH-cert.pub

login notes every key it writes in ~/.ssh/opkssh-logins.json, so that status, --if-needed,
inspect, ssh-config and logout find a --key-file login without the flag. Everything local (the
configuration, the key's directory and path, the agent for --agent) is checked before the browser
opens.

Which OP: PROVIDER names an entry of the configuration file ($XDG_CONFIG_HOME/opkssh/config.yaml,
by default ~/.config/opkssh/config.yaml; see "opkssh provider"); without it, OPKSSH_PROVIDER or
the file's default is used, unless --issuer or OPKSSH_ISSUER names an OP directly. The variables
OPKSSH_ISSUER, OPKSSH_CLIENT_ID and OPKSSH_CLIENT_SECRET override the file; flags override both.

ssh-agent: --agent also adds the key and certificate to the agent at $SSH_AUTH_SOCK, with a
lifetime equal to the certificate's remaining validity, and removes earlier opkssh identities from
it (ssh would offer them too, and each expired one uses up one of the server's MaxAuthTries).
--agent-only puts them only in the agent and writes no file at all, neither key nor certificate:
the key is gone when the agent stops, and --if-needed then checks the agent instead of the files.
Files an earlier login wrote are left as they are ("opkssh logout" removes them).
"agent: true" in the configuration file (top level, or for one provider) makes --agent the
default; --agent=false overrides it for one login.

Refresh tokens: where the OP offers them (offline_access in its discovery document), login asks for
one and keeps it beside the key in PATH.refresh (mode 0600). --if-needed then renews an expiring
certificate with it, without a browser: the key stays, the OP's refreshed ID token is added to the
PK token and the certificate re-issued. If the OP refuses the token (revoked, expired, the session
ended) the file is removed and the browser login follows. --no-refresh-token (or
no_refresh_token: true in the configuration file) neither asks for, stores nor uses one.

--if-needed looks at the current login as "opkssh status" does: the certificates of the default
and noted keys and opkssh's identities in the ssh-agent (--key-file or --key-type narrow it). It
renews or replaces that login where it is (same file and key type, or the agent only), and makes a
new one in the default file only when there is none.

--if-needed takes turns with other "login --if-needed" of the same key (ssh may start several at
once through "opkssh ssh-config"): it locks PATH.lock, then looks at the certificate again, so only
the first refreshes or logs in and the others find the certificate valid.

On a remote machine without a browser: --device (which also shows a QR code of the URL when
stderr is a terminal wide enough; --no-qr hides it); or "ssh -L 3000:localhost:3000 HOST" and
--no-browser, opening the printed localhost URL on your own machine; or --no-browser alone, opening
the second printed URL (the OP's) in any browser and pasting here the address of the page that does
not load at the end (http://localhost:3000/login-callback?…). Pasted lines are read from stdin when
it is a terminal, or always with --paste; an address of another login is refused. When no browser
can be opened, login says so at once; where nobody could open the URL by hand (stdin is not a
terminal and no --paste, as in ssh's Match exec), it fails at once instead of waiting.

With no provider configured at all, login offers the presets: on a terminal it asks which one to
add (as "opkssh provider add" would, as the default), otherwise it lists the commands to run.

Restricted certificates, e.g. for automation: --force-command CMD makes sshd run CMD whatever
command the client asks for (the original request is in $SSH_ORIGINAL_COMMAND), and the
certificate then permits no port, agent or X11 forwarding and no ~/.ssh/rc (a pty still works);
--source-address 192.0.2.0/24,2001:db8::/32 makes sshd accept it only from those addresses. sshd
enforces both, on top of the server's policy. A renewal with --if-needed keeps the certificate's
restrictions unless these flags are given; a still-valid certificate is kept as it is.

The OP must allow the redirect URI http://localhost:3000/login-callback (or :10001 or :11110; the
first free port is used). Issuers must be https, except http on loopback for test OPs.`,
		Example: `  opkssh provider add corp --preset generic --issuer https://sso.example.com/realms/main --client-id opkssh
  opkssh login                 # the default provider of the configuration file
  opkssh login corp            # a named one
  opkssh login --issuer https://accounts.google.com --client-id 1234.apps.googleusercontent.com --client-secret S
  opkssh login --issuer https://sso.example.com/realms/main --client-id opkssh --key-type ed25519
  opkssh login --issuer http://127.0.0.1:8888 --client-id opkssh --no-browser --key-file ./demo_key
  opkssh login corp --device   # on a machine without a browser: enter the code shown on another device
  opkssh login corp --no-browser   # open the printed URL anywhere; paste the address the browser ends on
  opkssh login corp --agent    # also load the key and certificate into the running ssh-agent
  opkssh login corp --agent-only   # only into the agent: no key on disk
  opkssh login corp --key-file ~/.ssh/id_backup --force-command "/usr/local/bin/backup" --source-address 192.0.2.0/24`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runLogin(cmd, f, args) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.issuer, "issuer", "", "OP issuer URL, exactly as in its ID tokens (https://…)")
	fl.StringVar(&f.clientID, "client-id", "", "client ID registered for opkssh at the OP")
	fl.StringVar(&f.clientSecret, "client-secret", "", "client secret, for OPs that treat desktop apps as confidential clients")
	fl.StringVar(&f.scopes, "scopes", strings.Join(provider.DefaultScopes(), " "), "space-separated scopes to request")
	fl.StringVar(&f.keyType, "key-type", "ecdsa", "key type: ecdsa (P-256) or ed25519")
	fl.StringVar(&f.keyFile, "key-file", "", "private key path (default ~/.ssh/id_ecdsa or ~/.ssh/id_ed25519)")
	fl.DurationVar(&f.lifetime, "lifetime", 24*time.Hour, "certificate validity from the login, by this machine's clock or the OP's, whichever is earlier (servers apply their own limit)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the browser or device login")
	fl.BoolVar(&f.noBrowser, "no-browser", false, "print the login URL instead of opening a browser")
	fl.BoolVar(&f.paste, "paste", false, "also read the address the browser login ended on from stdin (the default with --no-browser when stdin is a terminal)")
	fl.BoolVar(&f.device, "device", false, "device-code login: enter a code shown here on any device's browser (for machines without one)")
	fl.BoolVar(&f.noQR, "no-qr", false, "with --device: show no QR code of the verification URL (shown when stderr is a terminal wide enough)")
	fl.StringSliceVar(&f.redirectURIs, "redirect-uri", provider.DefaultRedirectURIs(), "loopback redirect URIs to try in order")
	fl.BoolVar(&f.ifNeeded, "if-needed", false, "do nothing if the current login (as \"opkssh status\" finds it) remains valid for longer than --min-remaining")
	fl.DurationVar(&f.minRemaining, "min-remaining", 5*time.Minute, "with --if-needed: how long the certificate must remain valid")
	fl.BoolVar(&f.quiet, "quiet", false, "print nothing unless a login is needed (for ssh's Match exec)")
	fl.BoolVar(&f.agent, "agent", false, "also add the key and certificate to the ssh-agent at $SSH_AUTH_SOCK, replacing earlier opkssh identities (default: the configuration file's agent setting)")
	fl.BoolVar(&f.agentOnly, "agent-only", false, "add the key and certificate to the ssh-agent and write no file")
	fl.BoolVar(&f.noRefreshToken, "no-refresh-token", false, "do not ask the OP for a refresh token, nor store or use one (see above)")
	fl.StringVar(&f.forceCommand, "force-command", "", "the only command sshd may run with this certificate (see above)")
	fl.StringVar(&f.sourceAddress, "source-address", "", "comma-separated IP addresses and CIDR blocks the certificate may be used from")
	fl.BoolVar(&f.ci, "ci", false, "in a CI job (GitHub Actions, Forgejo Actions, GitLab CI): log in with the job's ID token, GQ-signed; see docs/ci.md")
	fl.BoolVar(&f.gq, "gq", false, "replace the OP's RS256 signature in the certificate with a GQ256 proof of it, so the ID token cannot be replayed elsewhere (no refresh token is kept)")
	fl.StringVar(&f.idTokenEnv, "id-token-env", provider.DefaultGitLabTokenEnv, "with --ci in GitLab CI: the variable the job's id_tokens entry fills")
	return cmd
}

func runLogin(cmd *cobra.Command, f loginFlags, args []string) error {
	if f.ci || cmd.Flags().Changed("id-token-env") {
		return runCILogin(cmd, f)
	}
	lc, err := loginConfig(cmd, f, args, os.Getenv)
	if err != nil {
		return err
	}
	cfg := lc.cfg
	agentFromFile := !cmd.Flags().Changed("agent") && lc.agent
	if agentFromFile {
		f.agent = true
	}
	keyType, keyPath, err := loginTarget(&f)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.quiet {
		out = io.Discard
	}
	sock := os.Getenv(sshagent.EnvSocket)
	if f.agent {
		// Before the browser: a login whose key cannot be stored is wasted.
		conn, err := dialAgent(sock)
		if err != nil && agentFromFile {
			return fmt.Errorf("%w (the configuration file says agent: true; pass --agent=false to log in without the agent)", err)
		}
		if err != nil {
			return err
		}
		conn.Close()
	}
	if f.paste && f.device {
		return errors.New("--paste is for the browser login; --device needs nothing pasted")
	}
	if f.lifetime <= 0 {
		return fmt.Errorf("--lifetime %s must be positive", f.lifetime)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", f.timeout)
	}
	fl := cmd.Flags()
	restrict, err := session.ParseRestrictions(f.forceCommand, f.sourceAddress, fl.Changed("force-command"), fl.Changed("source-address"))
	if err != nil {
		return err
	}
	if f.gq {
		cfg.NoRefreshToken = true // a refreshed ID token would carry the OP's signature
	}
	if f.ifNeeded {
		// The current login decides, as for "opkssh status": the certificate files opkssh wrote
		// (or the one --key-file names) and the agent. Its renewal goes where it is.
		q := session.Query{KeyFile: f.keyFile, AgentOnly: f.agentOnly, Issuer: cfg.Issuer, MinRemaining: f.minRemaining}
		if fl.Changed("key-type") {
			q.KeyType = keyType
		}
		cur, done, err := stillLoggedIn(out, f, q, sock)
		if done || err != nil {
			return err
		}
		keyPath, keyType = cur.Target, cur.TargetType
		if keyPath == "" {
			f.agentOnly, f.agent = true, true // the current login lives only in the agent
		}
		if keyPath != "" {
			if err := session.CheckKeyPath(keyPath); err != nil {
				return err
			}
			// ssh starts one opkssh per connection: let one log in (or refresh), the others wait
			// and then find the certificate valid.
			unlock, err := session.Lock(keyPath, func() {
				fmt.Fprintf(cmd.ErrOrStderr(), "Another opkssh login of %s is running; waiting for it to finish (Ctrl-C to cancel)...\n", keyPath)
			})
			if err != nil {
				return err
			}
			defer unlock()
			q.KeyFile = keyPath
			if _, done, err := stillLoggedIn(out, f, q, sock); done || err != nil {
				return err
			}
		}
		if keyPath != "" && !cfg.NoRefreshToken {
			if done, err := refreshLogin(cmd, out, f, restrict, cfg, keyPath, sock); done || err != nil {
				return err
			}
		}
	}
	// Everything local is checked before the browser: the user's time at the OP is not spent
	// on a login that could not be configured, stored or shown.
	if cfg.ClientID == "" && cfg.Issuer == "" && lc.name == "" && len(lc.file.Providers) == 0 {
		name, err := firstRun(cmd, lc.file)
		if err != nil {
			return err
		}
		if lc, err = loginConfig(cmd, f, []string{name}, os.Getenv); err != nil {
			return err
		}
		cfg = lc.cfg
	}
	if cfg.ClientID == "" && cfg.Issuer == "" && lc.name == "" && len(lc.file.Providers) > 0 {
		return fmt.Errorf("%s names no default provider: name one, \"opkssh login NAME\" (%s), or make one the default with \"opkssh provider default NAME\"", lc.file.Path, strings.Join(lc.file.Names(), ", "))
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if keyPath != "" {
		if err := session.CheckKeyPath(keyPath); err != nil {
			return err
		}
	}
	interactive := f.paste || isTerminal(cmd.InOrStdin())
	hinted := !f.device && !f.noBrowser && warnNoDisplay(cmd.ErrOrStderr(), os.Getenv)
	signer, alg, err := session.NewKey(keyType)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	opts := provider.LoginOptions{Signer: signer, Alg: alg, Status: cmd.ErrOrStderr()}
	var res *provider.LoginResult
	if f.device {
		if !f.noQR {
			opts.QRWidth = terminalWidth(cmd.ErrOrStderr())
		}
		res, err = provider.DeviceLogin(ctx, cfg, opts)
	} else {
		if !f.noBrowser {
			opts.OpenBrowser = browser.OpenURL // its output goes to stderr: see Main
			opts.NoBrowser = onNoBrowser(cmd.ErrOrStderr(), interactive, hinted)
		}
		if f.paste || f.noBrowser && isTerminal(cmd.InOrStdin()) {
			opts.Paste = cmd.InOrStdin()
		}
		res, err = provider.Login(ctx, cfg, opts)
	}
	if err == nil && f.gq {
		err = provider.GQSign(ctx, nil, res)
	}
	if err != nil {
		return err
	}
	login, err := session.Issue(signer, res, time.Now(), f.lifetime, restrict)
	if err != nil {
		return err
	}
	if keyPath != "" {
		if err := saveLogin(cmd, login, keyPath); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Logged in as %s (issuer %s).\n", login.Identity, login.Issuer)
	printValidUntil(out, login.ValidBefore)
	if keyPath != "" {
		fmt.Fprintf(out, "Wrote %s and %s\n", keyPath, sshcert.CertPath(keyPath))
		keepRefreshToken(cmd, out, cfg, keyPath, res.RefreshToken)
	}
	if f.agent {
		if err := addToAgent(out, sock, login); err != nil {
			if keyPath != "" {
				return fmt.Errorf("%w (the key and certificate files were written)", err)
			}
			return err
		}
	}
	if f.agentOnly {
		fmt.Fprintln(out, "Wrote no file (--agent-only): the key exists only in the ssh-agent.")
	}
	return nil
}

// loginTarget reads --key-type and where the login goes: keyPath stays empty with --agent-only
// (nothing is written; it implies --agent), else --key-file or the default key file of the type.
func loginTarget(f *loginFlags) (session.KeyType, string, error) {
	keyType, err := session.ParseKeyType(f.keyType)
	if err != nil {
		return "", "", err
	}
	if f.agentOnly {
		if f.keyFile != "" {
			return "", "", errors.New("--key-file and --agent-only do not go together: --agent-only writes no file")
		}
		f.agent = true
		return keyType, "", nil
	}
	keyPath, err := session.LoginKeyPath(f.keyFile, keyType)
	if err != nil {
		return "", "", withHint(err, "pass --key-file")
	}
	return keyType, keyPath, nil
}

// saveLogin writes the login's key files (session.Login.Save); a key that could not be noted in
// the record of logins is only a warning: the login itself worked.
func saveLogin(cmd *cobra.Command, login *session.Login, keyPath string) error {
	err := login.Save(keyPath)
	if errors.Is(err, session.ErrNotRecorded) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Warning: %v; commands without --key-file will not find this key.\n", err)
		return nil
	}
	return err
}

func printValidUntil(out io.Writer, validBefore time.Time) {
	fmt.Fprintf(out, "Certificate valid until %s (%s from now).\n", validBefore.Local().Format("2006-01-02 15:04 MST"), shortDuration(time.Until(validBefore)))
}

// withHint adds what the user can do to err.
func withHint(err error, hint string) error { return fmt.Errorf("%w; %s", err, hint) }

// stillLoggedIn is --if-needed: it finds the current login that q describes (session.FindCurrent,
// the same as "opkssh status") and reports whether it remains valid for longer than
// --min-remaining. With --agent, only key files count, and a valid certificate file missing from
// the agent (say, after the agent restarted) is loaded into it without a new login.
func stillLoggedIn(out io.Writer, f loginFlags, q session.Query, sock string) (session.Current, bool, error) {
	ids, name, err := agentIdentities(sock, f.agentOnly)
	if err != nil {
		return session.Current{}, false, err
	}
	q.Agent, q.AgentName, q.Now = ids, name, time.Now()
	if f.agent && !f.agentOnly {
		// --agent keeps a key file and mirrors it into the agent: the login to keep is a file's,
		// and an --agent-only identity in the agent does not stand for one.
		q.Agent = nil
	}
	cur, err := session.FindCurrent(q)
	if err != nil || cur.State != certstatus.Valid {
		return cur, false, err
	}
	fmt.Fprintf(out, "Still logged in as %s (issuer %s) for %s; nothing to do.\n", cur.Identity, cur.Issuer, shortDuration(cur.Remaining))
	if f.agent && !cur.InAgent {
		return cur, true, loadIntoAgent(out, sock, cur.Key)
	}
	return cur, true, nil
}

// loginChoice is the OP a login uses and where that choice came from.
type loginChoice struct {
	cfg   provider.Config
	agent bool                 // the configuration file's default for --agent
	name  string               // the provider name chosen, "" if none
	file  *provider.ConfigFile // the user's configuration file
}

// loginConfig picks the OP to log in with: the provider named by the argument, OPKSSH_PROVIDER or
// the configuration file's default (unless an issuer is given directly), then the OPKSSH_*
// variables, then the flags the user set. It also returns the file's default for --agent.
func loginConfig(cmd *cobra.Command, f loginFlags, args []string, getenv func(string) string) (loginChoice, error) {
	file, err := loadClientConfig(getenv)
	if err != nil {
		return loginChoice{}, err
	}
	env := provider.EnvOverrides(getenv)
	name := getenv(provider.EnvProvider)
	if len(args) == 1 {
		name = args[0]
	}
	directIssuer := cmd.Flags().Changed("issuer") || env.Issuer != ""
	if name == "" && !directIssuer {
		name = file.Default
	}
	var cfg provider.Config
	if name != "" {
		if cfg, err = file.Provider(name); err != nil {
			return loginChoice{}, err
		}
	}
	flags := provider.Overrides{Issuer: strings.TrimSpace(f.issuer), ClientID: f.clientID, ClientSecret: f.clientSecret, NoRefreshToken: f.noRefreshToken}
	if cmd.Flags().Changed("scopes") {
		flags.Scopes = strings.Fields(f.scopes)
		if len(flags.Scopes) == 0 {
			flags.Scopes = []string{""} // fails validation: no "openid"
		}
	}
	if cmd.Flags().Changed("redirect-uri") {
		flags.RedirectURIs = f.redirectURIs
	}
	return loginChoice{cfg: cfg.With(env).With(flags).WithDefaults(), agent: file.AgentDefault(name), name: name, file: file}, nil
}

// loadClientConfig reads the user's configuration file; a missing file is an empty configuration.
func loadClientConfig(getenv func(string) string) (*provider.ConfigFile, error) {
	path, err := provider.ConfigPath(getenv)
	if err != nil {
		// Flags and OPKSSH_* variables still work without a home directory (e.g. in CI).
		return &provider.ConfigFile{Path: "(no configuration file: " + err.Error() + ")"}, nil
	}
	return provider.LoadConfig(path)
}
