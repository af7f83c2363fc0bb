// Command testop runs opkssh's test OpenID Provider on a loopback address,
// for demos, manual testing and scripts. See usage below, or run it with
// --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/testop"
)

const usage = `Usage: go run ./examples/testop [flags]

testop runs a small OpenID Provider (OP) on a loopback address so you can try
opkssh without a real identity provider. It serves discovery, a JWKS, the
authorization code flow with PKCE, and userinfo over plain HTTP, with users
you choose. It is a test tool: it only listens on loopback, compares passwords
in clear and must never be used in production.

Without --users it has two demo users, both with password "password":
  alice@example.com  sub alice, groups ssh-users and admins, amr pwd and mfa
  bob@example.com    sub bob, group ssh-users, amr pwd

Examples:
  # Demo users and an HTML login form on http://127.0.0.1:8888:
  go run ./examples/testop

  # Log everyone in as alice without a form, on a free port, and tell a
  # script where the OP is (the file appears once the OP is listening and is
  # removed when it stops):
  go run ./examples/testop --addr 127.0.0.1:0 \
      --auto-approve alice@example.com --issuer-file /tmp/testop-issuer &
  until [ -s /tmp/testop-issuer ]; do sleep 0.1; done
  curl "$(cat /tmp/testop-issuer)/.well-known/openid-configuration"

  # Your own users, and a confidential client:
  go run ./examples/testop --users users.yaml --client-secret s3cret

A users file is a YAML list; unknown keys are errors:
  - subject: carol                 # required, unique
    email: carol@example.com
    email_verified: true
    name: Carol Example
    groups: [ssh-users]
    amr: [pwd, mfa]
    extra:                         # any further claims, may be nested
      realm_access: {roles: [admin]}
    password: secret               # omitted: any password is accepted
    tenant: 1111-aaaa              # with --tenant: the user's tenant (default the first)

Quirks of production OPs, to test clients against (none by default):
  --issuer-path /realms/x/   issuer with a path and a trailing slash
  --alg ES384                another signing algorithm
  --no-kid --foreign-jwks    tokens without kid; unusable keys in the JWKS
  --clock-offset 2m          the OP's clock ahead of this machine's
  --azp other --aud other --nbf 10m --schemeless-iss
  --tenant 1111-aaaa=contoso.onmicrosoft.com --tenant 2222-bbbb
                             Microsoft Entra style tenants: issuers BASE/{id}/v2.0
  --device-drops-nonce       device-flow ID tokens without nonce

Then point opkssh at the issuer it prints, with the client ID it prints.
Requests are logged to stderr; stop it with Ctrl-C (SIGINT) or SIGTERM.
Exit status: 0 after a clean stop, 1 on error, 2 on bad usage.

Flags:
`

// config is the parsed command line.
type config struct {
	addr         string
	autoApprove  string
	usersFile    string
	clientID     string
	clientSecret string
	issuerFile   string
	lifetime     time.Duration
	quiet        bool
	alg          string
	quirks       testop.Quirks
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "testop:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("testop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8888", "listen `address`; must be loopback, port 0 picks a free port")
	fs.StringVar(&cfg.autoApprove, "auto-approve", "", "log this `user` (email or subject) in without a form")
	fs.StringVar(&cfg.usersFile, "users", "", "YAML `file` of users instead of the demo users")
	fs.StringVar(&cfg.clientID, "client-id", "opkssh", "OAuth client `ID` to register")
	fs.StringVar(&cfg.clientSecret, "client-secret", "", "client `secret`; empty registers a public client (PKCE required)")
	fs.StringVar(&cfg.issuerFile, "issuer-file", "", "write the issuer URL to this `file` once listening")
	fs.DurationVar(&cfg.lifetime, "lifetime", time.Hour, "ID and access token `lifetime`")
	fs.BoolVar(&cfg.quiet, "quiet", false, "do not log requests to stderr")
	fs.StringVar(&cfg.alg, "alg", "RS256", "signing `algorithm`: "+strings.Join(testop.Algs, ", "))
	q := &cfg.quirks
	fs.StringVar(&q.IssuerPath, "issuer-path", "", "`path` after the address in the issuer, e.g. / or /realms/x/")
	fs.BoolVar(&q.NoKID, "no-kid", false, "sign ID tokens without a kid header")
	fs.BoolVar(&q.ForeignJWKs, "foreign-jwks", false, "also publish an ML-DSA-44 (AKP) key, a key of an unknown kty and an RSA enc key")
	fs.DurationVar(&q.ClockOffset, "clock-offset", 0, "run the OP's clock this `duration` ahead (negative: behind)")
	fs.StringVar(&q.JWKSCacheControl, "jwks-cache-control", "", "Cache-Control `header` of the JWKS (default max-age=300)")
	fs.StringVar(&q.AZP, "azp", "", "azp `client` of ID tokens; aud then lists the client and it")
	fs.Func("aud", "extra `audience` of ID tokens (repeatable)", func(v string) error {
		q.ExtraAudiences = append(q.ExtraAudiences, v)
		return nil
	})
	fs.DurationVar(&q.NotBefore, "nbf", 0, "add an nbf claim this `duration` after iat")
	fs.BoolVar(&q.SchemelessIss, "schemeless-iss", false, "iss claim without http:// (as Google's accounts.google.com)")
	fs.Func("tenant", "Entra-style tenant `ID[=domain,…]` (repeatable)", func(v string) error {
		id, domains, _ := strings.Cut(v, "=")
		t := testop.Tenant{ID: id}
		if domains != "" {
			t.Domains = strings.Split(domains, ",")
		}
		q.Tenants = append(q.Tenants, t)
		return nil
	})
	fs.BoolVar(&q.DeviceDropsNonce, "device-drops-nonce", false, "leave the nonce out of device-flow ID tokens")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "testop: unexpected argument %q (see --help)\n", fs.Arg(0))
		return cfg, errors.New("unexpected arguments")
	}
	if cfg.lifetime <= 0 {
		fmt.Fprintf(stderr, "testop: --lifetime must be positive, not %v\n", cfg.lifetime)
		return cfg, errors.New("bad lifetime")
	}
	return cfg, nil
}

// serve runs the OP until ctx is done.
func serve(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	users := demoUsers()
	if cfg.usersFile != "" {
		var err error
		if users, err = loadUsers(cfg.usersFile); err != nil {
			return err
		}
	}
	if cfg.autoApprove != "" && !hasUser(users, cfg.autoApprove) {
		return fmt.Errorf("--auto-approve %s: no such user (subject or email)", cfg.autoApprove)
	}
	opts := testop.Options{
		Addr:          cfg.addr,
		Users:         users,
		Clients:       []testop.Client{{ID: cfg.clientID, Secret: cfg.clientSecret}},
		AutoApprove:   cfg.autoApprove,
		TokenLifetime: cfg.lifetime,
		Alg:           cfg.alg,
		Quirks:        cfg.quirks,
	}
	if !cfg.quiet {
		opts.Logf = log.New(stderr, "", log.LstdFlags|log.Lmicroseconds).Printf
	}
	srv, err := testop.Start(opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	if cfg.issuerFile != "" {
		// 0644: readable by scripts running as other users.
		if err := atomicfile.Write(cfg.issuerFile, []byte(srv.Issuer()+"\n"), 0o644); err != nil {
			return fmt.Errorf("issuer file: %w", err)
		}
		defer os.Remove(cfg.issuerFile)
	}
	printBanner(stdout, srv.Issuer(), cfg, users)
	for _, t := range cfg.quirks.Tenants {
		fmt.Fprintf(stdout, "  tenant %s: issuer %s\n", t.ID, srv.TenantIssuer(t.ID))
	}

	<-ctx.Done()
	fmt.Fprintln(stdout, "testop: stopping")
	return srv.Close()
}

func hasUser(users []testop.User, id string) bool {
	for _, u := range users {
		if u.Subject == id || u.Email == id {
			return true
		}
	}
	return false
}

func printBanner(w io.Writer, issuer string, cfg config, users []testop.User) {
	client := "public client, PKCE S256 required"
	if cfg.clientSecret != "" {
		client = "confidential client, secret from --client-secret"
	}
	login := "HTML login form"
	if cfg.autoApprove != "" {
		login = "auto-approve as " + cfg.autoApprove
	}
	fmt.Fprintf(w, "testop: test OpenID Provider (never use in production)\n")
	fmt.Fprintf(w, "  issuer:     %s\n", issuer)
	fmt.Fprintf(w, "  client ID:  %s (%s; any loopback http redirect URI)\n", cfg.clientID, client)
	fmt.Fprintf(w, "  login:      %s\n", login)
	fmt.Fprintf(w, "  users:\n")
	for _, u := range users {
		fmt.Fprintf(w, "    %-24s sub=%s", u.Email, u.Subject)
		if len(u.Groups) > 0 {
			fmt.Fprintf(w, " groups=%s", strings.Join(u.Groups, ","))
		}
		if len(u.AMR) > 0 {
			fmt.Fprintf(w, " amr=%s", strings.Join(u.AMR, ","))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Stop with Ctrl-C.\n")
}
