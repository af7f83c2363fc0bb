package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// baseline measures this tree's opkssh against the one built from another git revision (make
// bench BASELINE=REV), interleaved run by run, so that both see the same machine: the report's
// other figures move with the machine and the day, and only a side-by-side run shows whether a
// change made start-up or a warm verify slower.
func (b *bench) baseline(rev string) error {
	src := filepath.Join(b.dir, "baseline-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	archive := exec.Command("sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", rev, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return fmt.Errorf("git archive %s: %v: %s", rev, err, out)
	}
	base := filepath.Join(b.dir, "opkssh-baseline")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", shipLDFlags, "-o", base, "./cmd/opkssh")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v: %s", rev, err, out)
	}
	pol, err := b.policyFile("p10", 10)
	if err != nil {
		return err
	}
	bins := []string{base, b.bin}
	caches := []string{b.newCacheDir("baseline-warm"), b.newCacheDir("current-warm")}
	type sample struct {
		times  []time.Duration
		faults []int64
	}
	var version, warm [2]sample
	current := b.bin
	defer func() { b.bin = current }()
	for i := 0; i < b.runs; i++ {
		for k, bin := range bins {
			b.bin = bin
			if i == 0 { // fill the cache: keys and policy snapshot
				if _, _, err := b.exec(nil, b.verifyArgs(pol, caches[k], "alice")...); err != nil {
					return err
				}
			}
			d, _, err := b.exec(nil, "--version")
			if err != nil {
				return err
			}
			version[k].times, version[k].faults = append(version[k].times, d), append(version[k].faults, b.lastFaults())
			d, _, err = b.exec(nil, b.verifyArgs(pol, caches[k], "alice")...)
			if err != nil {
				return err
			}
			warm[k].times, warm[k].faults = append(warm[k].times, d), append(warm[k].faults, b.lastFaults())
		}
	}
	fmt.Fprintf(&b.report, "## Against a baseline\n\n`opkssh` built from `%s` and from this tree, run alternately (baseline, this tree, "+
		"baseline, …), %d runs each, same machine and moment.\n\n| process | %s | this tree | ratio | page faults (median) |\n|---|---|---|---|---|\n",
		rev, b.runs, rev)
	for _, row := range []struct {
		name string
		s    [2]sample
	}{{"`opkssh --version`", version}, {"warm verify", warm}} {
		fmt.Fprintf(&b.report, "| %s | %s | %s | %.2f× | %d → %d |\n", row.name, stats(row.s[0].times), stats(row.s[1].times),
			float64(median(row.s[1].times))/float64(median(row.s[0].times)), medianInt(row.s[0].faults), medianInt(row.s[1].faults))
	}
	fmt.Fprintf(&b.report, "\n")
	return nil
}
