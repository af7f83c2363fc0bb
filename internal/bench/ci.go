package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

// ciVerify compares the warm verify of a CI job's GQ-signed certificate (login --ci) with the
// plain certificate of the browser login, runs interleaved so that load affects both alike.
// Target: the GQ median at most 1.3× the plain one.
func (b *bench) ciVerify() error {
	b.op.AddCIJob(testop.CIJob{RequestToken: "bench-job", Lifetime: time.Hour,
		Claims: map[string]any{"repository": "acme/app", "repository_owner_id": "1", "ref": "refs/heads/main"}})
	key := filepath.Join(b.dir, "ci_job")
	env := []string{"HOME=" + b.dir, "GITHUB_ACTIONS=true", provider.EnvActionsTokenURL + "=" + b.op.ActionsTokenURL(), provider.EnvActionsTokenToken + "=bench-job"}
	if _, out, err := b.exec(env, "login", "--ci", "--key-file", key); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	data, err := os.ReadFile(key + "-cert.pub")
	if err != nil {
		return err
	}
	f := strings.Fields(string(data))
	dir := filepath.Join(b.dir, "pci")
	os.MkdirAll(dir, 0o755)
	pol := filepath.Join(dir, "policies.yaml")
	src := fmt.Sprintf("version: 1\nproviders:\n  gha:\n    kind: github-actions\n    issuer: %s\nrules:\n  - principals: [deploy]\n    provider: gha\n    identities:\n      - {repository: acme/app, repository_owner_id: 1}\n", b.op.Issuer())
	if err := os.WriteFile(pol, []byte(src), 0o644); err != nil {
		return err
	}
	plainPol, err := b.policyFile("p10", 10)
	if err != nil {
		return err
	}
	ciCache, plainCache := b.newCacheDir("ci-warm"), b.newCacheDir("plain-warm")
	ciArgs := []string{"verify", "deploy", f[1], f[0], "--policy", pol, "--cache-dir", ciCache, "--log-file", filepath.Join(b.dir, "verify.log")}
	plainArgs := b.verifyArgs(plainPol, plainCache, "alice")
	for _, a := range [][]string{ciArgs, plainArgs} { // fill the caches
		if _, out, err := b.exec(nil, a...); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
	}
	var gq, plain []time.Duration
	for i := 0; i < b.runs; i++ {
		d, _, err := b.exec(nil, ciArgs...)
		if err != nil {
			return err
		}
		gq = append(gq, d)
		if d, _, err = b.exec(nil, plainArgs...); err != nil {
			return err
		}
		plain = append(plain, d)
	}
	ratio := float64(median(gq)) / float64(median(plain))
	fmt.Fprintf(&b.report, "## CI job certificates (GQ256)\n\nWarm verify of a `login --ci` certificate (GQ256 proof over the job's RS256 token, "+
		"github-actions provider) next to the browser login's plain RS256 certificate, interleaved, %d runs each.\n\n", b.runs)
	fmt.Fprintf(&b.report, "| certificate | latency |\n|---|---|\n| plain (RS256) | %s |\n| CI job (GQ256) | %s |\n\n", stats(plain), stats(gq))
	fmt.Fprintf(&b.report, "Target: GQ median ≤ 1.3× the plain median. Measured: %.2f× (%s).\n\n", ratio, verdict(ratio <= 1.3))
	return nil
}
