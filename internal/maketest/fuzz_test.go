// Package maketest tests the Makefile's own logic by running make with a fake go.
package maketest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// raceEnding is how Go 1.26 ends a -fuzz run that its deadline race (golang/go#75804) failed:
// the coordinator's bare error under the target's only FAIL line.
const raceEnding = "--- FAIL: FuzzParse (31.02s)\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\tgithub.com/opkssh-team/opkssh/internal/sshcert\t31.054s\n"

const progress = "fuzz: elapsed: 0s, gathering baseline coverage: 0/12 completed\nfuzz: elapsed: 3s, execs: 40304 (13431/sec), new interesting: 4 (total: 16)\n"

// TestFuzzRaceException runs `make fuzz` with a go that prints out and exits with rc, and checks
// whether make passes: only a run that ends exactly as the race ends is excused.
func TestFuzzRaceException(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no make in CI")
		}
		t.Skip("no make")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	targets := strings.Count(readFile(t, filepath.Join(root, "Makefile")), "\t$(FUZZ) '")
	if targets < 10 {
		t.Fatalf("the Makefile lists %d fuzz targets", targets)
	}
	tests := []struct {
		name   string
		out    string
		rc     int
		passes bool
	}{
		{"clean run", progress + "PASS\nok  \tgithub.com/opkssh-team/opkssh/internal/sshcert\t30.1s\n", 0, true},
		{"the deadline race", progress + raceEnding, 1, true},
		{"a fixture error that mentions a deadline", "--- FAIL: FuzzParse (0.00s)\n    fuzz_test.go:17: context deadline exceeded\nFAIL\nexit status 1\nFAIL\tgithub.com/opkssh-team/opkssh/internal/sshcert\t0.012s\n", 1, false},
		{"a failing seed before the race ending", "failure while testing seed corpus entry: FuzzParse/seed#1\n--- FAIL: FuzzParse/seed#1 (0.00s)\n    fuzz_test.go:40: context deadline exceeded\n" + raceEnding, 1, false},
		{"a failing input written", progress + "--- FAIL: FuzzParse (2.10s)\n    --- FAIL: FuzzParse (0.00s)\n        fuzz_test.go:50: re-marshals to other bytes\n\n    Failing input written to testdata/fuzz/FuzzParse/0123\n    To re-run:\n    go test -run=FuzzParse/0123\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\tgithub.com/opkssh-team/opkssh/internal/sshcert\t2.2s\n", 1, false},
		{"deadline text followed by more output", progress + raceEnding + "panic: late\n", 1, false},
		{"a build failure", "# github.com/opkssh-team/opkssh/internal/sshcert\nfuzz_test.go:3:2: undefined: x\nFAIL\tgithub.com/opkssh-team/opkssh/internal/sshcert [build failed]\n", 1, false},
		{"failure with no output", "", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			outFile, argsFile := filepath.Join(dir, "out"), filepath.Join(dir, "args")
			if err := os.WriteFile(outFile, []byte(tt.out), 0o644); err != nil {
				t.Fatal(err)
			}
			fakeGo := filepath.Join(dir, "go")
			script := "#!/bin/sh\necho \"$*\" >> '" + argsFile + "'\ncat '" + outFile + "'\nexit " + string(rune('0'+tt.rc)) + "\n"
			if err := os.WriteFile(fakeGo, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("make", "-s", "-C", root, "fuzz", "GO="+fakeGo, "FUZZTIME=7s", "VERSION=test")
			cmd.Env = cleanEnv()
			out, err := cmd.CombinedOutput()
			calls := strings.Split(strings.TrimSpace(readFile(t, argsFile)), "\n")
			if !strings.HasPrefix(calls[0], "test -run ^$ -timeout 0 -fuzztime 7s -fuzz ^Fuzz") {
				t.Fatalf("make ran go %s", calls[0])
			}
			if tt.passes {
				if err != nil || len(calls) != targets {
					t.Fatalf("make fuzz failed (%v) or ran %d of %d targets:\n%s", err, len(calls), targets, out)
				}
				if tt.rc != 0 && !strings.Contains(string(out), "counted as passed") {
					t.Fatalf("the excused run is not named:\n%s", out)
				}
				return
			}
			if err == nil || len(calls) != 1 {
				t.Fatalf("make fuzz passed (%v) or went on after the failure (%d runs):\n%s", err, len(calls), out)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// cleanEnv is the environment without what an outer make passes down.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") {
			env = append(env, kv)
		}
	}
	return env
}
