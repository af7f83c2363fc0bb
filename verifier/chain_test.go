package verifier

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/policy"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "chained")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func plainKey(t *testing.T) (typ, b64 string) {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k.Type(), base64.StdEncoding.EncodeToString(k.Marshal())
}

func chainVerify(opts Options, req Request) (Result, string) {
	var log bytes.Buffer
	opts.Log = slog.New(slog.NewJSONHandler(&log, nil))
	return Verify(context.Background(), opts, req), log.String()
}

func TestChainPlainKey(t *testing.T) {
	typ, b64 := plainKey(t)
	cmd := script(t, `echo "user=$1 type=$2 key=$3 literal=$4"; echo "second line"`)
	noPolicy := func() (*policy.Policy, error) {
		t.Fatal("the policy was loaded although --chain is set")
		return nil, nil
	}
	opts := Options{LoadPolicy: noPolicy, Chain: &Chain{Command: cmd + ` %u %t "%k" '100%% %x'`, Source: "--chain"}}
	// A user name opkssh itself would refuse still reaches the chained command (SSSD's user@domain).
	res, log := chainVerify(opts, Request{Principal: "alice@corp.example.com", KeyType: typ, CertB64: b64})
	want := "user=alice@corp.example.com type=" + typ + " key=" + b64 + " literal=100% %x\nsecond line"
	if !res.Allowed || res.Line != want || res.Reason != ReasonChained {
		t.Fatalf("chained: %+v\nwant line %q", res, want)
	}
	if !strings.Contains(log, `"reason":"chained"`) || !strings.Contains(log, `"chain":"--chain"`) || !strings.Contains(log, "printed 2 lines") {
		t.Errorf("log: %s", log)
	}
}

func TestChainFailures(t *testing.T) {
	typ, b64 := plainKey(t)
	req := Request{Principal: "alice", KeyType: typ, CertB64: b64}
	for _, c := range []struct {
		name, body, want string
		timeout          time.Duration
	}{
		{"exit status", `echo "ssh-ed25519 AAAA"; echo oops >&2; exit 3`, "exit status 3; stderr: oops", 0},
		{"timeout", `echo "ssh-ed25519 AAAA"; sleep 30`, "did not finish within 300ms", 300 * time.Millisecond},
		{"background child keeps the pipe", `(sleep 30; echo late) & echo "ssh-ed25519 AAAA"`, "", 0},
		{"too much output", `head -c 300000 /dev/zero | tr '\0' 'a'`, "printed more than", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			res, log := chainVerify(Options{Chain: &Chain{Command: script(t, c.body), Timeout: c.timeout}}, req)
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if c.want == "" { // the command's own output is complete; the leftover child is killed
				if !res.Allowed {
					t.Errorf("%+v", res)
				}
				return
			}
			if res.Allowed || res.Line != "" || res.Reason != ReasonChainFailed || !strings.Contains(res.Detail, c.want) {
				t.Errorf("allowed=%v reason=%s detail=%q line=%.80q, want %q", res.Allowed, res.Reason, res.Detail, res.Line, c.want)
			}
			if !strings.Contains(log, `"reason":"chain_failed"`) {
				t.Errorf("log: %s", log)
			}
		})
	}
	res, _ := chainVerify(Options{Chain: &Chain{Command: "relative/cmd %u"}}, req)
	if res.Allowed || res.Reason != ReasonChainFailed || !strings.Contains(res.Detail, "absolute path") {
		t.Errorf("relative command: %+v", res)
	}
}

// An opkssh certificate never reaches the chained command, whatever the command would say.
func TestChainNeverSeesOpksshCertificates(t *testing.T) {
	f := setup(t)
	marker := filepath.Join(t.TempDir(), "ran")
	cmd := script(t, "touch "+marker+"; echo 'cert-authority ssh-ed25519 AAAA'")
	opts := Options{LoadPolicy: policyFor(t, f.op.Issuer(), ""), Chain: &Chain{Command: cmd}}
	if res := run(t, opts, "alice", f.alice); !res.Allowed || res.Reason != ReasonAllowed {
		t.Fatalf("allowed certificate: %+v", res)
	}
	if res := run(t, opts, "nobody-here", f.alice); res.Allowed || res.Reason == ReasonChained {
		t.Fatalf("denied certificate went to the chain: %+v", res)
	}
	// A certificate key type whose bytes do not parse claims to be opkssh's: denied, not chained.
	res, _ := chainVerify(opts, Request{Principal: "alice", KeyType: f.alice.Type, CertB64: "AAAA"})
	if res.Allowed || res.Reason != ReasonCertMalformed {
		t.Fatalf("malformed certificate: %+v", res)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the chained command ran for an opkssh certificate")
	}
}

func TestChainFromPolicy(t *testing.T) {
	typ, b64 := plainKey(t)
	cmd := script(t, `echo "from policy for $1"`)
	pol, err := policy.Parse("p.yaml", []byte("version: 1\nchain:\n  command: "+cmd+" %u\n  timeout: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, log := chainVerify(Options{LoadPolicy: func() (*policy.Policy, error) { return pol, nil }}, Request{Principal: "bob", KeyType: typ, CertB64: b64})
	if !res.Allowed || res.Line != "from policy for bob" || !strings.Contains(log, `"chain":"p.yaml:2"`) {
		t.Fatalf("%+v\n%s", res, log)
	}
	// Without a chain a plain key is denied as before.
	pol, _ = policy.Parse("p.yaml", []byte("version: 1\n"))
	res, _ = chainVerify(Options{LoadPolicy: func() (*policy.Policy, error) { return pol, nil }}, Request{Principal: "bob", KeyType: typ, CertB64: b64})
	if res.Allowed || res.Reason != ReasonNotACertificate {
		t.Fatalf("%+v", res)
	}
}

// TestOptionsInLine checks that a rule's options are appended to the line, and only the rule's.
func TestOptionsInLine(t *testing.T) {
	f := setup(t)
	pol, err := policy.Parse("p.yaml", []byte(`version: 1
providers:
  test: {issuer: `+f.op.Issuer()+`, client_ids: [opkssh]}
rules:
  - principals: [deploy]
    provider: test
    identities: [{email: alice@example.com}]
    options: [restrict, 'command="/usr/local/bin/deploy \"prod\""', 'from="10.0.0.0/8"']
  - principals_from: groups
    principals_allowed: [admins]
    provider: test
    identities: [{email: alice@example.com}]
    options: [no-pty]
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{LoadPolicy: func() (*policy.Policy, error) { return pol, nil }}
	res := run(t, opts, "deploy", f.alice)
	want := `cert-authority,principals="opkssh-wildcard",restrict,command="/usr/local/bin/deploy \"prod\"",from="10.0.0.0/8" `
	if !res.Allowed || !strings.HasPrefix(res.Line, want) {
		t.Fatalf("line %q, want prefix %q (%+v)", res.Line, want, res)
	}
	res = run(t, opts, "admins", f.alice)
	if !res.Allowed || !strings.HasPrefix(res.Line, `cert-authority,principals="opkssh-wildcard",no-pty `) {
		t.Fatalf("principals_from line %q (%+v)", res.Line, res)
	}
}
