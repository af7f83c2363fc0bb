package verifier

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/argv"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/policy"
)

// Chaining. sshd runs a single AuthorizedKeysCommand, and many servers already use it (SSSD's
// sss_ssh_authorizedkeys, EC2 Instance Connect). With a chained command (verify --chain, or the
// policy's chain block), verify runs that command for every key that is not an opkssh
// certificate — a plain key, or a certificate without the openpubkey-pkt extension — and prints
// what it prints, so sshd sees the same answer as if the command were its own. An opkssh
// certificate, or anything claiming to be one, never reaches the command: it is decided by
// opkssh alone, and a failure of the chained command can never turn into an allow of it.
//
// The command runs as the verify user, with verify's environment and no stdin, in a process group
// of its own that is killed when the timeout passes; its output is bounded, and a command that
// fails, times out or prints too much prints nothing through verify. Each run is logged.

// Chain limits.
const (
	// MaxChainOutput bounds what a chained command may print: enough for thousands of keys.
	MaxChainOutput = 256 << 10
	maxChainStderr = 4 << 10
)

// Reason codes of chained decisions.
const (
	ReasonChained     = "chained"      // the chained command answered for a key that is not opkssh's
	ReasonChainFailed = "chain_failed" // it failed, timed out or printed too much: nothing printed
)

// Chain is another AuthorizedKeysCommand that verify runs for keys that are not opkssh
// certificates.
type Chain struct {
	// Command is the command line as in sshd_config: an absolute path and arguments, split as
	// sshd splits them; %u, %k and %t in the arguments are replaced by verify's own arguments.
	Command string
	Timeout time.Duration // policy.DefaultChainTimeout if zero
	// Source says where the command was configured ("--chain", or the policy's file:line).
	Source string
}

// IsOpksshCertificate reports whether a key offered to sshd is an opkssh certificate, or claims
// to be one: a certificate key type whose certificate does not parse, or that carries a PK token.
// Only keys for which this is false are handed to a chained command.
func IsOpksshCertificate(keyType, keyB64 string) bool {
	if !strings.HasSuffix(keyType, "-cert-v01@openssh.com") {
		return false
	}
	if len(keyB64) > 128<<10 {
		return true // far beyond any key; the certificate parser refuses it
	}
	raw, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return true
	}
	pub, err := ssh.ParsePublicKey(raw)
	if err != nil {
		return true
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok || cert.Type() != keyType {
		return true
	}
	_, hasPKT := cert.Permissions.Extensions[sshcert.ExtensionPKToken]
	return hasPKT
}

// chainFor returns the chained command for a request, from Options or else from the policy.
func chainFor(opts Options) *Chain {
	if opts.Chain != nil {
		return opts.Chain
	}
	pol, err := opts.LoadPolicy()
	if err != nil || pol == nil || pol.Chain == nil {
		return nil
	}
	return &Chain{Command: pol.Chain.Command, Timeout: pol.Chain.Timeout, Source: pol.Chain.Pos.String()}
}

// chained runs the chained command for a key that is not an opkssh certificate.
func chained(ctx context.Context, c *Chain, req Request) Result {
	res := Result{Chain: c.Source}
	out, err := runChain(ctx, c, req)
	if err != nil {
		res.Reason, res.Detail = ReasonChainFailed, err.Error()
		return res
	}
	lines := strings.Count(out, "\n")
	if out != "" && !strings.HasSuffix(out, "\n") {
		lines++
	}
	res.Reason = ReasonChained
	res.Detail = fmt.Sprintf("chained command printed %d lines", lines)
	if lines > 0 {
		res.Allowed, res.Line = true, strings.TrimSuffix(out, "\n")
	}
	return res
}

// runChain runs the command and returns its standard output.
func runChain(ctx context.Context, c *Chain, req Request) (string, error) {
	if msg := policy.CheckChainCommand(c.Command); msg != "" {
		return "", fmt.Errorf("chained command %s", msg)
	}
	words, _ := argv.Split(c.Command)
	for i := 1; i < len(words); i++ {
		words[i] = expandChainArg(words[i], req)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = policy.DefaultChainTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stdout := &boundedBuffer{limit: MaxChainOutput}
	stderr := &boundedBuffer{limit: maxChainStderr}
	err := runGroup(ctx, words, stdout, stderr)
	name := words[0]
	switch {
	case ctx.Err() != nil:
		return "", fmt.Errorf("chained command %s did not finish within %s%s", name, timeout, stderrNote(stderr))
	case err != nil:
		return "", fmt.Errorf("chained command %s failed: %v%s", name, err, stderrNote(stderr))
	case stdout.over:
		return "", fmt.Errorf("chained command %s printed more than %d bytes; nothing was passed on", name, MaxChainOutput)
	}
	return stdout.String(), nil
}

// runGroup runs the command in a process group of its own, with its output read through pipes
// into the buffers. When the command exits (or ctx ends) the whole group is killed, so a child it
// left behind can neither keep running nor hold verify up by keeping the pipes open.
func runGroup(ctx context.Context, words []string, stdout, stderr *boundedBuffer) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Stdout, cmd.Stderr = outW, errW
	ownGroup(cmd)
	startErr := cmd.Start()
	outW.Close()
	errW.Close()
	var readers sync.WaitGroup
	for _, p := range []struct {
		r *os.File
		b *boundedBuffer
	}{{outR, stdout}, {errR, stderr}} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			io.Copy(p.b, p.r)
		}()
	}
	defer func() {
		// Whatever still holds the pipes has had its chance: closing them ends the readers.
		done := make(chan struct{})
		go func() { readers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
		}
		outR.Close()
		errR.Close()
		readers.Wait()
	}()
	if startErr != nil {
		return startErr
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-ctx.Done():
		killGroup(cmd)
		<-exited
		return ctx.Err()
	}
	killGroup(cmd) // leftovers of the group, if any
	return err
}

// expandChainArg replaces %u, %k, %t and %% with verify's arguments, as sshd would have; any other
// % sequence stays as it is (sshd has already expanded the tokens it knows).
func expandChainArg(s string, req Request) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case 'u':
			b.WriteString(req.Principal)
		case 'k':
			b.WriteString(req.CertB64)
		case 't':
			b.WriteString(req.KeyType)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			continue
		}
		i++
	}
	return b.String()
}

func stderrNote(b *boundedBuffer) string {
	s := strings.TrimSpace(strings.ToValidUTF8(b.String(), "?"))
	if s == "" {
		return ""
	}
	return "; stderr: " + clip(strings.ReplaceAll(s, "\n", " | "))
}

// boundedBuffer keeps the first limit bytes written to it and notes that more came.
// It is read only after its writer is done.
type boundedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); room < len(p) {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *boundedBuffer) String() string { return b.buf.String() }
