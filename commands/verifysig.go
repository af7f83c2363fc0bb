package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/internal/signing"
	"github.com/opkssh-team/opkssh/policy"
)

// maxSigFile bounds a signature file read from disk.
const maxSigFile = 1 << 20

type verifySigFlags struct {
	namespace, sigFile, issuer, clientID, policyFile, principal, cacheDir, signedAt string
	jwksFiles                                                                       []string
	asJSON                                                                          bool
}

func newVerifySignatureCmd() *cobra.Command {
	var f verifySigFlags
	cmd := &cobra.Command{
		Use:   "verify-signature -n NAMESPACE -s SIGFILE (--issuer URL --client-id ID | --policy FILE) [FILE]",
		Short: "Check a signature made with an opkssh key and print the signer's verified identity",
		Long: `Check that SIGFILE is a signature over FILE (standard input if FILE is "-" or missing) made for
NAMESPACE with an opkssh key, and print who made it: the email, subject and issuer that the PK
token in the embedded certificate proves, with the OP's signature checked against its keys.

Exit status 0 only if all of these hold:
  - SIGFILE is an SSH signature (opkssh sign, or ssh-keygen -Y sign -f KEY-cert.pub) for NAMESPACE;
  - it embeds an opkssh certificate (signatures by plain SSH keys are refused: nobody vouches for
    them) and verifies over FILE with the certificate's key;
  - the PK token verifies: issued by the trusted OP (--issuer/--client-id, or a provider of
    --policy) for one of its client IDs, signed with the OP's keys, committing to exactly this key;
  - with --signed-at, that time falls within the certificate's validity and the provider's
    expiration (24h from the login with --issuer);
  - with --policy, the identity is accepted: by a "signers:" entry for NAMESPACE or, with
    -I PRINCIPAL, by a rule that would let it log in as PRINCIPAL.

The OP's keys come from the key cache (the server's /var/cache/opkssh when readable, else your
own cache directory) or from --jwks-file, which pins keys: use it with the OP's archived keys to
check signatures older than the OP's last key rotation. See docs/signing.md.`,
		Example: `  opkssh verify-signature -n file -s release.tar.gz.sig --issuer https://accounts.google.com \
      --client-id 206584157355-7cbe4s640tvm7naoludob4ut1emii7sf.apps.googleusercontent.com release.tar.gz
  opkssh verify-signature -n file -s notes.txt.sig --policy signers.yaml --json notes.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := "-"
			if len(args) == 1 {
				file = args[0]
			}
			return runVerifySignature(cmd, f, file)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "the namespace the signature must have been made for (required)")
	fl.StringVarP(&f.sigFile, "signature-file", "s", "", "the signature file (required)")
	fl.StringVar(&f.issuer, "issuer", "", "the OP trusted to vouch for signers (with --client-id)")
	fl.StringVar(&f.clientID, "client-id", "", "the client ID the OP's tokens must be issued to (with --issuer)")
	fl.StringVar(&f.policyFile, "policy", "", "a policy file: its providers are trusted and its signers: section (or, with -I, its rules) says who is accepted")
	fl.StringVarP(&f.principal, "principal", "I", "", "with --policy: accept the signer if a rule lets it log in as PRINCIPAL")
	fl.StringArrayVar(&f.jwksFiles, "jwks-file", nil, "verify the OP's signature with these keys only (a JWKS file, e.g. archived keys); repeatable")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "directory of your cache of the OP's keys (default ~/.cache/opkssh/keys); the server's /var/cache/opkssh is consulted first when readable")
	fl.StringVar(&f.signedAt, "signed-at", "", "the time the signature claims (RFC 3339, @SECONDS or YYYYMMDD[HHMM[SS]][Z]); it must fall within the certificate's validity")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON (also on refusal)")
	_ = cmd.MarkFlagRequired("namespace")
	_ = cmd.MarkFlagRequired("signature-file")
	return cmd
}

func runVerifySignature(cmd *cobra.Command, f verifySigFlags, file string) error {
	trust, err := signatureTrust(f.issuer, f.clientID, f.policyFile, f.principal, f.jwksFiles, f.cacheDir)
	if err != nil {
		return err
	}
	var at time.Time
	if f.signedAt != "" {
		if at, err = signing.ParseTime(f.signedAt, nil); err != nil {
			return err
		}
	}
	armored, err := signing.ReadFile(f.sigFile, maxSigFile)
	if err != nil {
		return err
	}
	var msg io.Reader = cmd.InOrStdin()
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return err
		}
		defer fh.Close()
		msg = fh
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	res, verr := signing.Verify(ctx, armored, msg, f.namespace, at, trust)
	if f.asJSON {
		out := struct {
			Valid  bool   `json:"valid"`
			Reason string `json:"reason,omitempty"`
			Error  string `json:"error,omitempty"`
			*signing.Result
		}{Valid: verr == nil, Result: res}
		if verr != nil {
			out.Reason, out.Error = signing.ReasonOf(verr), verr.Error()
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if verr != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "opkssh: signature refused (%s): %v\n", signing.ReasonOf(verr), verr)
		return exitError{code: 1}
	}
	if !f.asJSON {
		printSignature(cmd.OutOrStdout(), res)
	}
	return nil
}

// signatureTrust builds what a signature is checked against from the flags.
func signatureTrust(issuer, clientID, policyFile, principal string, jwksFiles []string, cacheDir string) (signing.Trust, error) {
	var trust signing.Trust
	switch {
	case policyFile != "" && (issuer != "" || clientID != ""):
		return trust, errors.New("give either --policy or --issuer with --client-id, not both")
	case policyFile != "":
		data, err := signing.ReadFile(policyFile, 4<<20)
		if err != nil {
			return trust, err
		}
		pol, err := policy.Parse(policyFile, data)
		if err != nil {
			return trust, err
		}
		trust.Policy, trust.RequireSigner, trust.Principal = pol, true, principal
	case issuer != "" && clientID != "":
		if principal != "" {
			return trust, errors.New("-I needs --policy: the principal names rules of a policy")
		}
		trust.Policy = &policy.Policy{Providers: map[string]*policy.Provider{"issuer": {
			Name: "issuer", Issuer: issuer, ClientIDs: []string{clientID}, Expiration: policy.Expiration{FromIAT: 24 * time.Hour},
		}}}
	default:
		return trust, errors.New("say whom to trust: --issuer URL --client-id ID, or --policy FILE")
	}
	if len(jwksFiles) > 0 {
		keys, err := signing.ReadJWKSFiles(jwksFiles)
		if err != nil {
			return trust, err
		}
		trust.Keys = keys
		return trust, nil
	}
	trust.Keys = signing.DefaultKeys(cacheDir)
	return trust, nil
}

func printSignature(w io.Writer, r *signing.Result) {
	const layout = "2006-01-02 15:04:05 MST"
	fmt.Fprintf(w, "Good %q signature by %s\n", r.Namespace, r.Identity())
	fmt.Fprintf(w, "  issuer:       %s\n", r.Issuer)
	fmt.Fprintf(w, "  subject:      %s\n", r.Subject)
	if r.Email != "" {
		fmt.Fprintf(w, "  email:        %s\n", r.Email)
	}
	fmt.Fprintf(w, "  provider:     %s (OP keys: %s)\n", r.Provider, r.Keys)
	fmt.Fprintf(w, "  key:          %s %s\n", r.KeyType, r.Fingerprint)
	fmt.Fprintf(w, "  logged in at: %s (the ID token's iat)\n", r.IssuedAt.Format(layout))
	end := "no end"
	if r.ValidBefore != nil {
		end = r.ValidBefore.Format(layout)
	}
	fmt.Fprintf(w, "  certificate:  valid %s to %s\n", r.ValidAfter.Format(layout), end)
	if r.SignedAt != nil {
		fmt.Fprintf(w, "  signed at:    %s (as claimed; within the certificate's validity)\n", r.SignedAt.Format(layout))
	} else {
		fmt.Fprintln(w, "  signed at:    not stated (an SSH signature carries no time; --signed-at checks one)")
	}
}
