// Package gitsign is the subset of `ssh-keygen -Y` that git runs as gpg.ssh.program when
// gpg.format is ssh: sign, find-principals, verify and check-novalidate, with the arguments git
// passes (git's gpg-interface.c), so that `git commit -S` signs with the opkssh key and
// `git verify-commit` and `git log --show-signature` name the signer's verified OIDC identity.
//
// Where ssh-keygen reads an allowed_signers file (-f), this reads an opkssh policy: its providers
// are the OPs trusted to vouch for signers, and its signers section, if it has one, says whose
// signatures are accepted; without one, any identity those OPs vouch for is named. find-principals
// and verify check the PK token (internal/signing); check-novalidate, as ssh-keygen's, checks only
// the signature, and git then reports the key as unknown. Output lines are ssh-keygen's, which
// git parses ("Good "git" signature for PRINCIPAL with TYPE key FINGERPRINT").
package gitsign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/signing"
	"github.com/opkssh-team/opkssh/internal/sshsig"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Env is the process's surroundings.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Now            func() time.Time
	// Keys are the OPs' keys; signing.DefaultKeys if nil.
	Keys verifier.KeySource
}

// args are the parsed ssh-keygen arguments.
type args struct {
	op, namespace, file, principal, sigFile, revoked string
	verifyTime                                       time.Time
	agent                                            bool
	files                                            []string
}

const maxSigFile = 1 << 20

// Main runs `ssh-keygen -Y OP ...` and returns the exit status (0 on success).
func Main(ctx context.Context, argv []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	a, err := parseArgs(argv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "opkssh: %v\nusage: opkssh -Y sign|verify|find-principals|check-novalidate ... (the ssh-keygen -Y subset git uses)\n", err)
		return 2
	}
	switch a.op {
	case "sign":
		err = sign(a, env)
	case "find-principals":
		err = findPrincipals(ctx, a, env)
	case "verify":
		err = verify(ctx, a, env)
	case "check-novalidate":
		err = checkNoValidate(a, env)
	default:
		err = fmt.Errorf("-Y %s is not supported (only sign, verify, find-principals, check-novalidate)", a.op)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "opkssh: %v\n", err)
		return 1
	}
	return 0
}

func parseArgs(argv []string) (args, error) {
	var a args
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if arg == "" { // git passes an empty argument when it has no verify time
			continue
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.files = append(a.files, arg)
			continue
		}
		flag, val := arg[:2], arg[2:]
		switch flag {
		case "-U":
			a.agent = true
			continue
		case "-Y", "-n", "-f", "-I", "-s", "-O", "-r":
		default:
			return a, fmt.Errorf("unknown option %s", arg)
		}
		if val == "" {
			if i+1 == len(argv) {
				return a, fmt.Errorf("option %s needs a value", flag)
			}
			i++
			val = argv[i]
		}
		switch flag {
		case "-Y":
			a.op = val
		case "-n":
			a.namespace = val
		case "-f":
			a.file = val
		case "-I":
			a.principal = val
		case "-s":
			a.sigFile = val
		case "-r":
			a.revoked = val
		case "-O":
			t, ok := strings.CutPrefix(val, "verify-time=")
			if !ok {
				return a, fmt.Errorf("option -O %s is not supported (only verify-time=)", val)
			}
			vt, err := signing.ParseTime(t, nil)
			if err != nil {
				return a, err
			}
			a.verifyTime = vt
		}
	}
	if a.op == "" {
		return a, errors.New("missing -Y")
	}
	return a, nil
}

// sign writes FILE.sig for each file, with the opkssh key named by -f (the private key, its
// .pub or its -cert.pub: git passes user.signingKey).
func sign(a args, env Env) error {
	if a.agent {
		return errors.New("opkssh signs with the key file of your login, not with a key in the agent: set user.signingKey to the key's path (opkssh git setup does)")
	}
	if a.file == "" || a.namespace == "" || len(a.files) == 0 {
		return errors.New("sign needs -n NAMESPACE -f KEY and at least one FILE")
	}
	keyPath := strings.TrimSuffix(a.file, "-cert.pub")
	if keyPath == a.file {
		keyPath = strings.TrimSuffix(a.file, ".pub")
	}
	key, err := signing.LoadKey(keyPath, env.Now())
	if err != nil {
		return err
	}
	for _, name := range a.files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		sig, err := signing.Sign(key, a.namespace, f)
		f.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(name+".sig", sig, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// trust reads the allowed-signers policy (-f).
func trust(a args, env Env) (signing.Trust, error) {
	if a.file == "" {
		return signing.Trust{}, errors.New("missing -f ALLOWED_SIGNERS (an opkssh policy: gpg.ssh.allowedSignersFile)")
	}
	data, err := readLimited(a.file, 4<<20)
	if err != nil {
		return signing.Trust{}, err
	}
	pol, err := policy.Parse(a.file, data)
	if err != nil {
		return signing.Trust{}, fmt.Errorf("allowed signers %s is not an opkssh policy: %w", a.file, err)
	}
	keys := env.Keys
	if keys == nil {
		keys = signing.DefaultKeys("")
	}
	return signing.Trust{Policy: pol, RequireSigner: len(pol.Signers) > 0, Keys: keys}, nil
}

func findPrincipals(ctx context.Context, a args, env Env) error {
	t, err := trust(a, env)
	if err != nil {
		return err
	}
	armored, err := readLimited(a.sigFile, maxSigFile)
	if err != nil {
		return err
	}
	res, err := signing.FindPrincipal(ctx, armored, a.verifyTime, t)
	if err != nil {
		return fmt.Errorf("no principal (%s): %w", signing.ReasonOf(err), err)
	}
	if err := checkRevoked(a, armored); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res.Identity())
	return nil
}

func verify(ctx context.Context, a args, env Env) error {
	if a.namespace == "" || a.principal == "" {
		return errors.New("verify needs -n NAMESPACE -I PRINCIPAL -s SIGNATURE_FILE -f ALLOWED_SIGNERS")
	}
	t, err := trust(a, env)
	if err != nil {
		return err
	}
	armored, err := readLimited(a.sigFile, maxSigFile)
	if err != nil {
		return err
	}
	if err := checkRevoked(a, armored); err != nil {
		return err
	}
	res, err := signing.Verify(ctx, armored, env.Stdin, a.namespace, a.verifyTime, t)
	if err != nil {
		fmt.Fprintln(env.Stdout, "Could not verify signature.")
		return fmt.Errorf("signature refused (%s): %w", signing.ReasonOf(err), err)
	}
	if res.Identity() != a.principal {
		fmt.Fprintln(env.Stdout, "Could not verify signature.")
		return fmt.Errorf("the signature is by %s, not %s", res.Identity(), a.principal)
	}
	fmt.Fprintf(env.Stdout, "Good %q signature for %s with %s key %s\n", a.namespace, res.Identity(), typeName(res.KeyType)+"-CERT", res.Fingerprint)
	fmt.Fprintf(env.Stdout, "opkssh: signed by %s (sub %s) as vouched for by %s\n", res.Identity(), res.Subject, res.Issuer)
	return nil
}

func checkNoValidate(a args, env Env) error {
	if a.namespace == "" {
		return errors.New("check-novalidate needs -n NAMESPACE -s SIGNATURE_FILE")
	}
	armored, err := readLimited(a.sigFile, maxSigFile)
	if err != nil {
		return err
	}
	sig, err := sshsig.ParseArmored(armored)
	if err != nil {
		return err
	}
	if err := sig.Verify(env.Stdin, a.namespace); err != nil {
		return err
	}
	key := sig.PublicKey
	if c, ok := key.(*ssh.Certificate); ok {
		key = c.Key
	}
	fmt.Fprintf(env.Stdout, "Good %q signature with %s key %s\n", a.namespace, typeName(sig.PublicKey.Type()), ssh.FingerprintSHA256(key))
	return nil
}

// checkRevoked refuses a signature whose key (or certificate) is listed in the -r file, a list of
// public keys in authorized_keys form (git's gpg.ssh.revocationFile; KRLs are not supported).
func checkRevoked(a args, armored []byte) error {
	if a.revoked == "" {
		return nil
	}
	data, err := readLimited(a.revoked, 4<<20)
	if err != nil {
		return err
	}
	sig, err := sshsig.ParseArmored(armored)
	if err != nil {
		return err
	}
	signer := sig.PublicKey
	if c, ok := signer.(*ssh.Certificate); ok {
		signer = c.Key
	}
	for rest := data; len(rest) > 0; {
		pub, _, _, next, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return fmt.Errorf("revocation file %s: only public keys in authorized_keys form are supported: %v", a.revoked, err)
		}
		if c, ok := pub.(*ssh.Certificate); ok {
			pub = c.Key
		}
		if string(pub.Marshal()) == string(signer.Marshal()) {
			return fmt.Errorf("key %s is revoked by %s", ssh.FingerprintSHA256(signer), a.revoked)
		}
		rest = next
	}
	return nil
}

// typeName names a key type as ssh-keygen's output does (ECDSA, ED25519, RSA, with -CERT).
func typeName(t string) string {
	cert := strings.HasSuffix(t, "-cert-v01@openssh.com")
	base := strings.TrimSuffix(t, "-cert-v01@openssh.com")
	name := strings.ToUpper(base)
	switch {
	case strings.HasPrefix(base, "ecdsa-"):
		name = "ECDSA"
	case base == ssh.KeyAlgoED25519:
		name = "ED25519"
	case base == ssh.KeyAlgoRSA:
		name = "RSA"
	}
	if cert {
		name += "-CERT"
	}
	return name
}

func readLimited(path string, limit int64) ([]byte, error) {
	if path == "" {
		return nil, errors.New("missing -s SIGNATURE_FILE")
	}
	return signing.ReadFile(path, limit)
}
