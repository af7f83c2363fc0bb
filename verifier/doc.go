// Package verifier makes the server's decision for `opkssh verify`, sshd's AuthorizedKeysCommand:
// may the holder of this certificate log in as this Unix user?
//
// The certificate is self-signed, so it proves nothing by itself. Authority comes from the PK token
// inside it, checked in this order, each step failing closed with a reason code:
//
//  1. the certificate parses, is a user certificate of the declared type, carries a client key
//     within bounds (RSA 2048-8192 bits with e=65537, ECDSA P-256/384/521, Ed25519; checked
//     before any signature), is signed by its own key and is within its validity window; its
//     critical options are only those sshd enforces itself (sshcert.Parse);
//  2. the PK token carries exactly two signatures and the OP's part is an ID token (not an access
//     token, typ at+jwt);
//  3. the PK token's issuer belongs to a provider configured in policies.yaml: an exact string
//     match, except Google's scheme-less form and multi-tenant templates (policy.TokenIssuer);
//  4. the key the ID token commits to is the certificate's key (before any signature with it);
//  5. the client's own signature over the ID token's payload verifies; then the OP's signature
//     verifies with a key from that provider's JWKS (KeySource; normally the on-disk Cache, see
//     cache.go, or the pinned jwks_file, read under internal/trustfile's rules) under an
//     asymmetric algorithm that fits the key (never none or HMAC; a token without kid is tried
//     against each fitting key); the audience contains a configured client ID and azp, if
//     present, is one; the nonce equals the hash of the client instance claims;
//     for a CI provider (policy kinds github-actions, forgejo-actions, gitlab-ci) the OP's signature
//     must instead be a GQ256 proof and the commitment is in aud or the GQ header (ci.go);
//  6. the token is within the provider's expiration rule (from iat, or the token's exp) and its
//     iat and nbf are not in the future beyond a small clock skew; a refreshed ID token appended
//     to the PK token, once verified as the continuation of the same login under the same rules,
//     takes the original's place in this step only (refreshed.go);
//  7. the policy allows the identity for the principal (rules with require.from also need the
//     client address sshd passes as %C); when the admin's rules do not, and user policies are
//     enabled, the principal's own policy file may (userpolicy.go).
//
// Only then is one authorized_keys line produced:
//
//	cert-authority,principals="<p>" <key-type> <base64 key>
//
// where <p> is the requested user if the certificate names it, or "opkssh-wildcard" (the principal
// OpenPubkey clients put in their certificates). The key is re-encoded from the parsed key, the
// principal is validated, so no unvalidated certificate bytes reach sshd.
//
// The PK token is parsed with openpubkey's pktoken package and the commitment is its
// clientinstance hash; signatures are checked with jwx. We do not link openpubkey's verifier
// package: of it we would use one signature check, and it pulls zitadel/oidc, OpenTelemetry and
// encoding/gob into every process (333 packages with it, 289 without, by `go list -deps` on
// 2026-12-02), whose package initialisation sshd pays on each login; docs/benchmarks.md has the
// start-up figures `make bench` measured.
package verifier
