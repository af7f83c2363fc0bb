// Package commands is the opkssh command line: one file per subcommand, plus the printing side of
// what several share (agent.go: the ssh-agent; refresh.go: login's renewal; log.go: verify's
// decision log; duration.go, terminal.go). Each command turns flags into calls and prints the
// result. The knowledge lives elsewhere: the workstation's keys, certificates, renewal and agent
// in internal/session; verify's flags and the server's default paths in internal/serverconfig;
// the decision in verifier, the policy in policy, the OPs in provider.
package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pkg/browser"
	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/opkssh-team/opkssh/commands.Version=…".
var Version = "dev"

// exitError carries a specific exit code; its message has already been reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// NewRoot builds the whole command tree, as the man pages and completion scripts describe it.
func NewRoot() *cobra.Command { return newRoot(nil) }

// newRoot builds the command tree for one run with args. sshd starts "opkssh verify" twice per
// login, so what only some runs need is left out of the others: the build information behind
// --version (read only for a development build asked for its version) and the completion
// functions (only for the shell's __complete requests).
func newRoot(args []string) *cobra.Command {
	full := args == nil
	version := Version
	if full || wantsVersion(args) {
		version = buildVersion()
	}
	root := &cobra.Command{
		Use:   "opkssh",
		Short: "SSH with your OpenID Connect identity instead of long-lived keys",
		Long: `opkssh lets you SSH with your OpenID Connect identity (alice@example.com, a group, a CI job)
instead of long-lived SSH keys, with no certificate authority to run.

On your workstation:
  opkssh login --issuer https://accounts.example.com --client-id opkssh
      log in in the browser; writes ~/.ssh/id_ecdsa and ~/.ssh/id_ecdsa-cert.pub, which ssh uses as usual
  opkssh inspect
      show who the certificate says you are, and until when

On the server (root):
  opkssh add root alice@example.com corp
      allow alice@example.com, verified by provider "corp" of /etc/opkssh/policies.yaml, to log in as root
  AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t
      in sshd_config: sshd asks opkssh for every login`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	// A run that names a command builds only that one (sshd starts "opkssh verify" twice per login,
	// and the other commands' flags, defaults and help would only cost it start-up time), and
	// --version none; help, completion and unknown commands get the whole tree.
	switch ctor, named := commandByName[firstArg(args)]; {
	case !full && named:
		root.AddCommand(ctor())
	case !full && (firstArg(args) == "--version" || firstArg(args) == "-v"):
	default:
		for _, name := range commandNames {
			root.AddCommand(commandByName[name]())
		}
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictUsage(root)
	if full || len(args) > 0 && strings.HasPrefix(args[0], cobra.ShellCompRequestCmd) {
		registerCompletions(root)
	}
	return root
}

// commandNames are the top-level commands in the order help lists them; commandByName builds each.
var (
	commandNames  = []string{"login", "verify", "add", "inspect", "cache", "server", "doctor", "provider", "status", "policy", "remove", "logout", "ssh-config", "version", "sign", "verify-signature", "git"}
	commandByName = map[string]func() *cobra.Command{
		"login": newLoginCmd, "verify": newVerifyCmd, "add": newAddCmd, "inspect": newInspectCmd, "cache": newCacheCmd,
		"server": newServerCmd, "doctor": newDoctorCmd, "provider": newProviderCmd, "status": newStatusCmd,
		"policy": newPolicyCmd, "remove": newRemoveCmd, "logout": newLogoutCmd, "ssh-config": newSSHConfigCmd,
		"version": newVersionCmd, "sign": newSignCmd, "verify-signature": newVerifySignatureCmd, "git": newGitCmd,
	}
)

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// wantsVersion reports whether a run prints the version: --version, -v or the version command.
func wantsVersion(args []string) bool {
	for _, a := range args {
		if a == "--version" || a == "-v" || a == "version" {
			return true
		}
	}
	return false
}

// Execute runs the command line and returns the process exit code: 0, 1 when the command failed,
// 2 for a usage error (unknown command or flag, wrong arguments), 130 when interrupted.
func Execute(args []string, stdout, stderr io.Writer) int {
	return execute(context.Background(), func() bool { return false }, args, stdout, stderr)
}

func execute(ctx context.Context, interrupted func() bool, args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{}
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-Y") {
		// git runs gpg.ssh.program with ssh-keygen's arguments: "opkssh -Y sign ...".
		args = append([]string{"git", "ssh-keygen"}, args...)
	}
	root := newRoot(args)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	ran, err := root.ExecuteContextC(ctx)
	code := exitCode(err, interrupted(), func(err error) { fmt.Fprintf(stderr, "opkssh: %v\n", err) })
	if code == exitUsage && ran != nil && ran.Name() == "verify" {
		code = 1 // verify answers sshd, whose contract is: a line and 0, or nothing and 1
	}
	return code
}

// Main is the entry point used by cmd/opkssh.
func Main() int {
	// pkg/browser runs the system's URL opener with these package variables as its output. The
	// process's stdout belongs to opkssh's own output (ssh's Match exec reads nothing, scripts read
	// status), so the opener writes to stderr. Set once here, for the whole process, rather than
	// by a command in the middle of its run.
	browser.Stdout, browser.Stderr = os.Stderr, os.Stderr
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "verify" {
		// sshd's AuthorizedKeysCommand: short, bounded by its own timeouts, and sshd ends it by
		// signal; Ctrl-C handling is for people at a terminal.
		return execute(context.Background(), func() bool { return false }, args, os.Stdout, os.Stderr)
	}
	ctx, interrupted, stop := withInterrupt()
	defer stop()
	return execute(ctx, interrupted, args, os.Stdout, os.Stderr)
}
