package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGitSignedCommit: after "opkssh login" and "opkssh git setup --global", a real git signs a
// commit with the opkssh key, and git verify-commit and git log --show-signature name alice's
// OIDC identity through opkssh. A signature by another OP's user, and a plain ssh-keygen key
// signature, are refused. Everything lives in a temporary HOME and GIT_CONFIG_GLOBAL.
func TestGitSignedCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed for this test: ", err)
	}
	op := startOP(t)
	home := t.TempDir()
	keyPath := filepath.Join(home, ".ssh", "id_ecdsa")
	os.MkdirAll(filepath.Dir(keyPath), 0o700)
	loginWith(t, op, "alice@example.com", keyPath)

	env := []string{"HOME=" + home, "GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"), "GIT_CONFIG_NOSYSTEM=1",
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "TZ=UTC",
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com", "GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com"}
	r := opkssh(t, env, "git", "setup", "--global")
	if r.code != 0 {
		t.Fatalf("git setup: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"gpg.format ssh", "gpg.minTrustLevel fully", "gpg.ssh.program " + opksshBin, "user.signingKey " + keyPath} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("git setup output lacks %q:\n%s", want, r.stdout)
		}
	}

	repo := t.TempDir()
	git := func(args ...string) (string, string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	mustGit := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := git(args...)
		if err != nil {
			t.Fatalf("git %v: %v\n%s\n%s", args, err, out, errOut)
		}
		return out, errOut
	}
	mustGit("init", "-q")
	os.WriteFile(filepath.Join(repo, "README"), []byte("signed\n"), 0o644)
	mustGit("add", "README")
	mustGit("commit", "-q", "-S", "-m", "signed commit")

	_, errOut := mustGit("verify-commit", "HEAD")
	if !strings.Contains(errOut, `Good "git" signature for alice@example.com with ECDSA-CERT key SHA256:`) {
		t.Errorf("verify-commit:\n%s", errOut)
	}
	if !strings.Contains(errOut, "as vouched for by "+op.Issuer()) {
		t.Errorf("verify-commit does not name the issuer:\n%s", errOut)
	}
	out, _ := mustGit("log", "--show-signature", "-1")
	if !strings.Contains(out, `Good "git" signature for alice@example.com`) {
		t.Errorf("log --show-signature:\n%s", out)
	}
	out, _ = mustGit("log", "-1", "--format=%G? %GS")
	if strings.TrimSpace(out) != "G alice@example.com" {
		t.Errorf("%%G? %%GS = %q, want G alice@example.com", out)
	}

	// A commit dated a week after the login (the date git passes as the signature's time) is
	// outside the certificate's validity: opkssh does not attribute it.
	os.WriteFile(filepath.Join(repo, "README"), []byte("future\n"), 0o644)
	mustGit("-c", "user.name=Alice", "commit", "-q", "-a", "-S", "-m", "dated later", "--date", "now")
	cmd := exec.Command("git", "commit", "-q", "--amend", "-S", "--no-edit")
	cmd.Dir = repo
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "GIT_COMMITTER_DATE=" + time.Now().Add(7*24*time.Hour).Format(time.RFC3339)}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("amend: %v %s", err, out)
	}
	out, _ = mustGit("log", "-1", "--format=%G? %GS")
	if strings.TrimSpace(out) != "U" {
		t.Errorf("commit dated after the certificate: %%G? %%GS = %q, want U", out)
	}
	mustGit("reset", "-q", "--hard", "HEAD~1")

	// A tag too.
	mustGit("tag", "-s", "-m", "v1", "v1")
	_, errOut = mustGit("verify-tag", "v1")
	if !strings.Contains(errOut, `Good "git" signature for alice@example.com`) {
		t.Errorf("verify-tag:\n%s", errOut)
	}

	// Trusting another OP only: the same commit is no longer attributed to anyone.
	other := filepath.Join(home, "other-signers.yaml")
	os.WriteFile(other, []byte("version: 1\nproviders:\n  git:\n    issuer: https://other.example.com\n    client_ids: [opkssh]\n"), 0o644)
	mustGit("config", "gpg.ssh.allowedSignersFile", other)
	out, _ = mustGit("log", "-1", "--format=%G? %GS")
	if strings.TrimSpace(out) != "U" {
		t.Errorf("another OP's policy: %%G? %%GS = %q, want U (nobody named)", out)
	}
	if _, _, err := git("verify-commit", "HEAD"); err == nil {
		t.Error("verify-commit succeeded with a policy that does not trust the OP")
	}
	mustGit("config", "--unset", "gpg.ssh.allowedSignersFile")

	// A signers section that accepts only bob: alice's commit is not accepted.
	bobOnly := filepath.Join(home, "bob-signers.yaml")
	os.WriteFile(bobOnly, []byte("version: 1\nproviders:\n  git:\n    issuer: "+op.Issuer()+"\n    client_ids: [opkssh]\nsigners:\n  - provider: git\n    identities: [{email: bob@example.com}]\n"), 0o644)
	mustGit("config", "gpg.ssh.allowedSignersFile", bobOnly)
	if _, _, err := git("verify-commit", "HEAD"); err == nil {
		t.Error("verify-commit accepted alice with a signers section for bob only")
	}
	mustGit("config", "--unset", "gpg.ssh.allowedSignersFile")

	// A commit signed by a plain ssh key (OpenSSH's own ssh-keygen as gpg.ssh.program): the
	// signature is good but opkssh names nobody, and verify-commit fails (gpg.minTrustLevel).
	plain := filepath.Join(home, "plain")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", plain).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	os.WriteFile(filepath.Join(repo, "README"), []byte("plain\n"), 0o644)
	mustGit("-c", "gpg.ssh.program=ssh-keygen", "-c", "user.signingKey="+plain, "commit", "-q", "-a", "-S", "-m", "plain key")
	out, _ = mustGit("log", "-1", "--format=%G? %GS")
	if strings.TrimSpace(out) != "U" {
		t.Errorf("plain key: %%G? %%GS = %q, want U (good signature, nobody vouches)", out)
	}
	if _, errOut, err := git("verify-commit", "HEAD"); err == nil {
		t.Errorf("verify-commit accepted a plain key's signature:\n%s", errOut)
	}
}
