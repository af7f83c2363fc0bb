// Command demo walks through opkssh end to end on one machine, explaining each step: a local
// OpenID Provider, `opkssh login` (the browser is a scripted one that approves the login),
// `opkssh inspect`, `opkssh verify` against a demo policy, and — when run as root with
// openssh-server installed — an ssh login through a throwaway sshd on 127.0.0.1.
//
// Everything lives in a temporary directory (and, for sshd, a temporary account and a directory
// under /var/lib); all of it is removed at the end. Your ~/.ssh is never touched.
//
//	go run ./examples/demo        (or: make demo)
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sandbox"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
	"github.com/opkssh-team/opkssh/internal/testop"
)

const demoAccount = "opkssh-demo"

// main runs the demo, as root in internal/sandbox's throw-away view of /etc, /var, /home and /run:
// the temporary account and the sshd directory it makes never reach the machine, and the machine
// is checked to be unchanged afterwards.
func main() {
	os.Exit(sandbox.Main(sandbox.Defaults(), func(error) int {
		start := time.Now()
		if err := run(); err != nil {
			fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
			return 1
		}
		fmt.Printf("\nDemo finished in %.1fs; everything it created has been removed.\n", time.Since(start).Seconds())
		return 0
	}))
}

type demo struct {
	dir, bin, browserDir string
}

func run() error {
	dir, err := os.MkdirTemp("", "opkssh-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &demo{dir: dir, bin: filepath.Join(dir, "opkssh"), browserDir: filepath.Join(dir, "browser")}

	step("Building opkssh and a scripted browser (it stands in for your web browser).")
	if err := d.build(); err != nil {
		return err
	}

	step("Starting a local OpenID Provider on 127.0.0.1. It knows alice@example.com and approves her login.")
	op, err := testop.Start(testop.Options{
		AutoApprove: "alice@example.com",
		Users:       []testop.User{{Subject: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"ssh-users"}}},
	})
	if err != nil {
		return err
	}
	defer op.Close()
	fmt.Printf("  issuer: %s\n", op.Issuer())

	step("Logging in. opkssh makes a fresh key, opens the browser at the OP, and packs the signed ID token into an SSH certificate.")
	key := filepath.Join(dir, "id_ecdsa")
	redirect, err := logintest.FreeRedirectURI()
	if err != nil {
		return err
	}
	if _, err := d.opkssh(true, "login", "--issuer", op.Issuer(), "--client-id", "opkssh", "--key-file", key, "--redirect-uri", redirect, "--timeout", "30s"); err != nil {
		return err
	}

	step("Inspecting the certificate: who it says you are, and until when (inspect verifies nothing).")
	if _, err := d.opkssh(true, "inspect", key+"-cert.pub"); err != nil {
		return err
	}

	account := demoAccount
	if os.Geteuid() != 0 {
		account = "alice"
	}
	step("Writing a server policy: alice@example.com, vouched for by our OP, may log in as " + account + ".")
	pol := filepath.Join(dir, "policies.yaml")
	policyText := fmt.Sprintf(`version: 1
providers:
  demo:
    issuer: %s
    client_ids: [opkssh]
    expiration: 24h
rules:
  - principals: [%s]
    provider: demo
    identities:
      - email: alice@example.com
`, op.Issuer(), account)
	if err := os.WriteFile(pol, []byte(policyText), 0o644); err != nil {
		return err
	}
	fmt.Print(indent(policyText))

	cert, err := os.ReadFile(key + "-cert.pub")
	if err != nil {
		return err
	}
	fields := strings.Fields(string(cert))
	owner := strconv.Itoa(os.Geteuid())
	step("Verifying as sshd would (AuthorizedKeysCommand opkssh verify %u %k %t). Allowed: one authorized_keys line on stdout.")
	out, err := d.opkssh(false, "verify", account, fields[1], fields[0], "--policy", pol, "--policy-owner", owner, "--log-file", filepath.Join(dir, "verify.log"))
	if err != nil {
		return fmt.Errorf("verify should have allowed %s: %v", account, err)
	}
	fmt.Printf("  stdout: %.110s…\n", strings.TrimSpace(out))

	step("Verifying for an account the policy does not mention (root). Denied: nothing on stdout, the reason in the log.")
	out, err = d.opkssh(false, "verify", "root", fields[1], fields[0], "--policy", pol, "--policy-owner", owner, "--log-file", filepath.Join(dir, "verify.log"))
	if err == nil || out != "" {
		return fmt.Errorf("verify should have denied root (stdout %q)", out)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "verify.log"))
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	fmt.Printf("  exit status 1, stdout empty; log: %s\n", lines[len(lines)-1])

	if err := sshdtest.Available(); err != nil {
		step("Skipping the ssh login: " + err.Error() + ". Run `sudo make demo` with openssh-server installed to see it.")
		return nil
	}
	return d.sshLogin(op.Issuer(), key, policyText)
}

// sshLogin installs the binary where sshd accepts it, starts sshd on 127.0.0.1 and logs in.
func (d *demo) sshLogin(issuer, key, policyText string) error {
	step("Starting a throwaway sshd on 127.0.0.1 whose AuthorizedKeysCommand is opkssh verify, and a temporary account " + demoAccount + ".")
	remove, err := sshdtest.EnsureUser(demoAccount)
	if err != nil {
		return err
	}
	defer remove()
	in, err := sshdtest.NewInstall(d.bin, "nobody")
	if err != nil {
		return err
	}
	defer in.Remove()
	if err := in.WritePolicy(policyText); err != nil {
		return err
	}
	srv, err := sshdtest.Start(sshdtest.Options{WorkDir: d.dir, Install: in})
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("  sshd on 127.0.0.1:%d, AuthorizedKeysCommand %s verify %%u %%k %%t (as nobody)\n", srv.Port, in.Binary)

	step("Logging in with plain ssh and the certificate from the login above.")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Printf("  $ ssh -p %d -i %s %s@127.0.0.1 'echo Hello from $(hostname) as $(id -un)'\n", srv.Port, key, demoAccount)
	out, errOut, err := srv.Run(ctx, demoAccount, key, "echo Hello from $(hostname) as $(id -un)")
	if err != nil {
		return fmt.Errorf("ssh login failed: %v\n%s\nsshd log:\n%s", err, errOut, srv.Log())
	}
	fmt.Print(indent(out))
	return nil
}

func (d *demo) build() error {
	for _, b := range [][2]string{{d.bin, "./cmd/opkssh"}, {filepath.Join(d.browserDir, "xdg-open"), "./internal/testop/fakebrowser"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	return nil
}

// opkssh runs the built binary, showing the command; show also prints its stdout.
func (d *demo) opkssh(show bool, args ...string) (string, error) {
	fmt.Printf("  $ opkssh %s\n", shorten(strings.Join(args, " ")))
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append(os.Environ(), "PATH="+d.browserDir+":"+os.Getenv("PATH"), "HOME="+d.dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if show {
		fmt.Print(indent(stdout.String()))
	}
	if err != nil && show {
		return stdout.String(), fmt.Errorf("opkssh %s: %v\n%s", args[0], err, stderr.String())
	}
	return stdout.String(), err
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

// shorten elides long arguments (certificates) in the echoed command line.
func shorten(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		if len(f) > 60 {
			f = f[:24] + "…"
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}
