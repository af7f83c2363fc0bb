package gitsign

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseArgsAsGitPassesThem(t *testing.T) {
	// find-principals with git's empty verify-time argument (a commit without a date), and verify
	// with -Overify-time= in one argument.
	a, err := parseArgs([]string{"-Y", "find-principals", "-f", "signers.yaml", "-s", "x.sig", ""})
	if err != nil || a.op != "find-principals" || a.file != "signers.yaml" || a.sigFile != "x.sig" || !a.verifyTime.IsZero() {
		t.Fatalf("%+v %v", a, err)
	}
	a, err = parseArgs([]string{"-Y", "verify", "-n", "git", "-f", "s", "-I", "alice@example.com", "-s", "x.sig", "-Overify-time=20260102030405"})
	if err != nil || a.principal != "alice@example.com" || a.namespace != "git" {
		t.Fatalf("%+v %v", a, err)
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local); !a.verifyTime.Equal(want) {
		t.Fatalf("verify time %s, want %s", a.verifyTime, want)
	}
	a, err = parseArgs([]string{"-Y", "sign", "-n", "git", "-f", "/k/id_ecdsa", "/tmp/.git_signing_buffer_tmpXYZ"})
	if err != nil || len(a.files) != 1 || a.file != "/k/id_ecdsa" {
		t.Fatalf("%+v %v", a, err)
	}
	for _, bad := range [][]string{{"-Y"}, {"-n", "git"}, {"-Y", "verify", "-Z"}, {"-Y", "verify", "-O", "hashalg=sha1"}, {"-Y", "verify", "-Overify-time=yesterday"}} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMainRefusals(t *testing.T) {
	var out, errOut bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	if code := Main(context.Background(), []string{"-Y", "encrypt"}, env); code == 0 || !strings.Contains(errOut.String(), "not supported") {
		t.Errorf("unsupported op: %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := Main(context.Background(), []string{"-Y", "sign", "-U", "-n", "git", "-f", "k", "f"}, env); code == 0 || !strings.Contains(errOut.String(), "not with a key in the agent") {
		t.Errorf("agent: %d %s", code, errOut.String())
	}
}
