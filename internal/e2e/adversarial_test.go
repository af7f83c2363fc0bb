package e2e

// TestAdversarial runs the built binary exactly as sshd runs it (as the unprivileged nobody, from
// a root-owned directory, empty environment, working directory /, RLIMIT_MEMLOCK 0,
// `opkssh verify %u %k %t` plus the server's flags) against certificates, tokens and
// policies an attacker would try. Every attack must exit 1, print nothing on stdout and log exactly
// one JSON decision carrying the reason below and a detail naming the cause (several attacks share
// a reason); a control case must exit 0 with one line. One test
// OP and one browser login serve every case; the other tokens are minted with the OP's own signing
// key (claims it would never issue) or with keys it never had.
//
//	attack                                                     expected reason
//	---------------------------------------------------------  -----------------------
//	ID token signed by a foreign RSA key, the OP's kid         bad_op_signature
//	ID token signed by a foreign RSA key, a new kid            unknown_signing_key
//	ID token without kid, a foreign key (JWKS of two keys)      bad_op_signature
//	alg: none                                                  alg_not_allowed
//	HS256 keyed with the OP's public key (PEM; JWK JSON)       alg_not_allowed
//	ES256 header naming the OP's RSA kid                       alg_not_allowed
//	PS256 by the OP's own key, whose JWK says RS256            alg_not_allowed
//	payload changed after signing, client re-signs             bad_op_signature
//	payload changed after signing, client signature kept       bad_client_signature
//	client (CIC) signature by another key                      bad_client_signature
//	nonce that commits to another key                          commitment_mismatch
//	OP-signed access token (typ at+jwt) instead of an ID token  pk_token_malformed
//	OP signature typed as the client's (typ CIC)               pk_token_malformed
//	nonce claim that is a number                               claims_malformed
//	honest PK token replayed in a certificate for another key  key_mismatch
//	certificate signed by a key other than its own             cert_malformed
//	honest certificate whose validity ended an hour ago        cert_expired
//	certificate blob declared as another key type              cert_malformed
//	plain public key instead of a certificate                  not_a_certificate
//	%k of 128 KiB - 1 (the longest argument exec can pass)     cert_malformed
//	certificate without the openpubkey-pkt extension           no_pk_token
//	garbage in the extension                                   pk_token_malformed
//	PK token with an extra (cosigner) signature                pk_token_malformed
//	PK token with an extra OP signature that nobody checks     pk_token_malformed
//	PK token without the client's signature                    pk_token_malformed
//	issuer not configured                                      unknown_issuer
//	issuer + "/", https for http, upper-case scheme            unknown_issuer
//	aud without a configured client id (string; array)         audience_mismatch
//	azp naming another client while aud lists ours             audience_mismatch
//	scheme-less iss for an issuer other than Google's; http://accounts.google.com  unknown_issuer
//	discovery answered with a redirect (to the real OP)        keys_unavailable
//	PK token naming a 100,000-bit RSA client key, e=2^31-1     key_mismatch (before any signature)
//	refreshed ID token typed at+jwt; with azp of another client  refreshed_token_invalid
//	jwks_file writable by others; in a dir writable by others;
//	  owned by nobody; ca_file writable by group               provider_broken
//	nbf 10 minutes ahead; nbf not a number                     token_not_yet_valid; claims_malformed
//	email x@evil.org@example.com, "x@evil.org"@example.com,
//	  "alice@example.com " against email / email_domain        no_matching_identity
//	malformed email beside a deny entry for that address       denied_by_deny_list
//	claim rule on typ; on client_id                            policy_error
//	expired: 24h after iat                                     token_expired
//	expired: expiration oidc and exp in the past               token_expired
//	iat one hour in the future                                 issued_in_future
//	email_verified false; missing; the string "true"           email_not_verified
//	email_domain lookalikes example.com.evil.io, evilexample   no_matching_identity
//	groups as one string "dev,admins" (never split)            no_matching_identity
//	groups as a number                                         no_matching_identity
//	principal with \n " , $, leading - (after --), 1000 chars  bad_request
//	principal with a leading - as sshd passes it (no --)       exit 1, nothing logged (**)
//	empty principal                                            bad_request
//	rule for principal alice used for root                     no_rule_for_principal
//	deny entry beside a matching allow                         denied_by_deny_list
//	policy file writable by group; by others; owned by nobody  policy_error
//	policy directory writable by others                        policy_error
//	policy with an unknown key; a duplicate key; a wrong type  policy_error
//	client_ids as a string (a broken provider block)           provider_broken
//	token of a broken provider beside a good one               provider_broken
//
// (**) the flag parser takes "-alice" for flags and exits 1 before verify runs, so no decision is
// logged; sshd only runs the command for existing users, and user names cannot start with '-'.
//
// Control cases (allowed): the honest login; a forged token with honest claims; a token without
// kid while the JWKS holds two keys (each key that fits the alg is tried, as OIDC clients do); azp
// naming our client; nbf within the skew; iss accounts.google.com and https://accounts.google.com
// for the provider https://accounts.google.com; a refreshed ID token that continues the login; a pinned
// jwks_file owned by root, mode 644; alice@EXAMPLE.com
// for email_domain example.com (domains compare ignoring ASCII case, as DNS does); aud
// ["other", "opkssh"] (aud may be a list; one configured client id suffices); the good provider's
// user beside a broken provider; groups as a single string (some OPs send one group so) and an iat
// with a fraction. openpubkey's NewFromCompact refuses the last two whole, before any signature is
// checked, because it decodes the claims into typed fields; verify builds the PK token from the
// library's pieces without that step and reads the claims as plain JSON.
//
// %k of 1 MiB cannot be passed to any program: Linux refuses a single argument of 128 KiB or more
// (MAX_ARG_STRLEN) with E2BIG, so sshd cannot deliver it either. The case below sends the longest
// argument that exec allows; TestVerifyOversizedCert (verifier/fuzz_test.go) gives Verify 1 MiB.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/openpubkey/openpubkey/pktoken"
	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/logintest"
	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/internal/sshdtest"
	"github.com/opkssh-team/opkssh/internal/testop"
	"github.com/opkssh-team/opkssh/provider"
)

// cred is what sshd passes for a key: %k and %t.
type cred struct{ b64, typ string }

type attack struct {
	name      string
	principal string
	cert      cred
	policy    string                  // policies.yaml; "" means the test provider with advRules
	prepare   func(path string) error // runs on the written policy file
	reason    string                  // the expected reason code; "allowed" for a control case
	detail    string                  // a substring of the logged detail; several attacks share a reason
}

// twoSignatures is the detail of a PK token refused for its set of signatures.
const twoSignatures = "PK token must carry exactly two signatures, the OP's and the client's"

// notRun is the expectation of a case that the command line parser refuses before verify runs.
const notRun = "-"

// advRules let alice in as alice, the admins group as ops and anyone at example.com as corp.
const advRules = `rules:
  - principals: [alice]
    provider: test
    identities:
      - email: alice@example.com
  - principals: [ops]
    provider: test
    identities:
      - group: admins
  - principals: [corp]
    provider: test
    identities:
      - email_domain: example.com
`

func TestAdversarial(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run the adversarial matrix as root (the policy file must be root-owned)")
		}
		t.Skip("the policy file must be root-owned; run as root")
	}
	start := time.Now()
	op := startOP(t)
	// verify runs as sshd runs it: as nobody, from a root-owned directory, with an empty
	// environment; the policy files are root's, the cache and the log nobody's.
	in := nobodyInstall(t)
	dir, cacheDir := in.Dir, in.Cache
	keyPath := login(t, op, "alice@example.com", "ecdsa", filepath.Join(t.TempDir(), "id_ecdsa"))
	b64, typ := certArgs(t, keyPath)
	honest := cred{b64, typ}
	m := newMinter(t, op, keyPath)

	iss := op.Issuer()
	now := time.Now()
	base := policy(iss, advRules)
	with := func(edit func(c map[string]any)) map[string]any {
		c := logintest.Claims(op, "alice", "alice@example.com", now)
		c["groups"] = []string{"admins"}
		edit(c)
		return c
	}
	honestClaims := with(func(map[string]any) {})
	opSigned := m.opSigner("RS256", m.kid)
	foreignRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	foreignEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubPEM, pubJWK := m.opPublicKeyBytes()
	nobody := uidOf(t, "nobody")
	redirector := startRedirector(t, iss)
	brokenPolicy := strings.Replace(base, "rules:", "  broken:\n    issuer: https://broken.example.com\n    client_ids: [opkssh]\n    expiration: forever\nrules:", 1)

	cases := []attack{
		{name: "control: honest login", principal: "alice", cert: honest, reason: "allowed"},
		{name: "control: forged token with honest claims", principal: "alice", cert: m.forge(honestClaims), reason: "allowed"},

		// The OP's signature and its algorithm.
		{name: "foreign RSA key under the OP's kid", detail: `OP signature does not verify with key "` + m.kid + `"`, principal: "alice", cert: m.mint(honestClaims, signer("RS256", foreignRSA, m.kid)), reason: "bad_op_signature"},
		{name: "foreign RSA key under a new kid", detail: `no key with kid "attacker-kid" in the JWKS of provider test`, principal: "alice", cert: m.mint(honestClaims, signer("RS256", foreignRSA, "attacker-kid")), reason: "unknown_signing_key"},
		{name: "control: no kid while the JWKS has two keys (each fitting key is tried)", principal: "alice", cert: m.mint(honestClaims, m.opSigner("RS256", "")), reason: "allowed"},
		{name: "foreign RSA key without kid", detail: "ID token has no kid and its OP signature verifies with none of the 2 keys that fit RS256", principal: "alice", cert: m.mint(honestClaims, signer("RS256", foreignRSA, "")), reason: "bad_op_signature"},
		{name: "alg none", detail: `ID token algorithm "none" is not accepted`, principal: "alice", cert: m.mint(honestClaims, unsigned(m.kid)), reason: "alg_not_allowed"},
		{name: "HS256 keyed with the OP's public key as PEM", detail: `ID token algorithm "HS256" is not accepted`, principal: "alice", cert: m.mint(honestClaims, signer("HS256", pubPEM, m.kid)), reason: "alg_not_allowed"},
		{name: "HS256 keyed with the OP's public key as JWK", detail: `ID token algorithm "HS256" is not accepted`, principal: "alice", cert: m.mint(honestClaims, signer("HS256", pubJWK, m.kid)), reason: "alg_not_allowed"},
		{name: "ES256 header naming the OP's RSA kid", detail: "algorithm ES256 does not fit a key of type RSA", principal: "alice", cert: m.mint(honestClaims, signer("ES256", foreignEC, m.kid)), reason: "alg_not_allowed"},
		{name: "PS256 by the OP's key whose JWK says RS256", detail: "key is for RS256, token uses PS256", principal: "alice", cert: m.mint(honestClaims, m.opSigner("PS256", m.kid)), reason: "alg_not_allowed"},

		// The payload and the client's commitment.
		{name: "payload changed after signing, client re-signs", detail: `OP signature does not verify with key "` + m.kid + `"`, principal: "alice", cert: m.mint(with(func(c map[string]any) { c["email"] = "root@example.com" }), swapPayload(opSigned, honestClaims)), reason: "bad_op_signature"},
		{name: "payload changed after signing, client signature kept", detail: "client signature: ", principal: "alice", cert: m.tamperHonest("alice@example.com", "admin@example.com"), reason: "bad_client_signature"},
		{name: "client signature by another key", detail: "client signature: ", principal: "alice", cert: m.mintWith(honestClaims, opSigned, foreignEC), reason: "bad_client_signature"},
		{name: "nonce committing to another key", detail: "nonce does not commit to the client instance claims", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["nonce"] = m.otherNonce() })), reason: "commitment_mismatch"},
		{name: "OP-signed access token (typ at+jwt) instead of an ID token", detail: "is an access token (typ at+jwt), not an ID token", principal: "alice", cert: m.mint(honestClaims, m.typedOPSigner("at+jwt")), reason: "pk_token_malformed"},
		{name: "OP signature typed as the client's (CIC)", detail: twoSignatures, principal: "alice", cert: m.mint(honestClaims, m.typedOPSigner("CIC")), reason: "pk_token_malformed"},
		{name: "control: OP signature without typ", principal: "alice", cert: m.mint(honestClaims, m.typedOPSigner("")), reason: "allowed"},
		{name: "nonce claim is a number", detail: "nonce of type string", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["nonce"] = 12345 })), reason: "claims_malformed"},

		// The certificate.
		{name: "honest PK token replayed for another key", detail: "is not the key the ID token commits to", principal: "alice", cert: m.wrap(foreignEC, m.honestPKT), reason: "key_mismatch"},
		{name: "certificate signed by another key", detail: "signed by a key other than its own", principal: "alice", cert: m.crossSigned(foreignEC), reason: "cert_malformed"},
		{name: "certificate validity ended an hour ago", detail: "certificate expired at ", principal: "alice", cert: m.expiredCert(), reason: "cert_expired"},
		{name: "blob declared as another key type", detail: `declared type "ssh-ed25519-cert-v01@openssh.com" but the blob is "ecdsa-sha2-nistp256-cert-v01@openssh.com"`, principal: "alice", cert: cred{honest.b64, ssh.CertAlgoED25519v01}, reason: "cert_malformed"},
		{name: "plain key instead of a certificate", detail: "is a plain key", principal: "alice", cert: m.plainKey(), reason: "not_a_certificate"},
		{name: "%k of 128 KiB - 1", detail: "131071 bytes of base64 exceed the 65536 byte limit", principal: "alice", cert: cred{strings.Repeat("A", 128<<10-1), honest.typ}, reason: "cert_malformed"},
		{name: "no openpubkey-pkt extension", detail: "no openpubkey-pkt extension", principal: "alice", cert: m.withExtension(nil), reason: "no_pk_token"},
		{name: "garbage in the extension", detail: twoSignatures, principal: "alice", cert: m.withExtension([]byte("garbage:\x00\xff:not-a-token")), reason: "pk_token_malformed"},
		{name: "extra cosigner signature", detail: twoSignatures, principal: "alice", cert: m.cosigned(), reason: "pk_token_malformed"},
		{name: "extra unchecked OP signature before the real one", detail: twoSignatures, principal: "alice", reason: "pk_token_malformed",
			cert: m.honestEdited(func(s []string) []string { return append([]string{s[0], s[1], "AAAA"}, s[1:]...) })},
		{name: "no client signature", detail: twoSignatures, principal: "alice", cert: m.honestEdited(func(s []string) []string { return s[:3] }), reason: "pk_token_malformed"},

		// Issuer and audience.
		{name: "issuer not configured", detail: `no provider in the policy has issuer "https://evil.example.com"`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = "https://evil.example.com" })), reason: "unknown_issuer"},
		{name: "issuer with a trailing slash", detail: `has issuer "` + iss + `/"`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = iss + "/" })), reason: "unknown_issuer"},
		{name: "issuer with https for http", detail: `has issuer "https` + strings.TrimPrefix(iss, "http") + `"`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = "https" + strings.TrimPrefix(iss, "http") })), reason: "unknown_issuer"},
		{name: "issuer in upper case", detail: `has issuer "` + strings.ToUpper(iss) + `"`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = strings.ToUpper(iss) })), reason: "unknown_issuer"},
		{name: "aud string without a configured client id", detail: `audience ["other-client"] contains none of the client IDs ["opkssh"]`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["aud"] = "other-client" })), reason: "audience_mismatch"},
		{name: "aud array without a configured client id", detail: `audience ["a" "b"] contains none of the client IDs ["opkssh"]`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["aud"] = []string{"a", "b"} })), reason: "audience_mismatch"},
		{name: "control: aud array with the client id second", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["aud"] = []string{"other-client", "opkssh"} })), reason: "allowed"},

		{name: "azp naming another client while aud lists ours", detail: `authorized party (azp) "other-client" is not one of the client IDs ["opkssh"]`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["aud"], c["azp"] = []string{"opkssh", "other-client"}, "other-client" })), reason: "audience_mismatch"},
		{name: "control: azp naming our client", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["aud"], c["azp"] = []string{"opkssh", "other-client"}, "opkssh" })), reason: "allowed"},
		// Google documents that its ID tokens carry iss with or without the scheme (keys pinned to
		// the test OP's, so that a loopback test can stand in for accounts.google.com).
		{name: "control: Google's scheme-less iss", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = "accounts.google.com" })),
			policy: policy("https://accounts.google.com", advRules), prepare: pinFile("jwks_file", "", 0o644, m.jwks()), reason: "allowed"},
		{name: "control: Google's iss with the scheme", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = "https://accounts.google.com" })),
			policy: policy("https://accounts.google.com", advRules), prepare: pinFile("jwks_file", "", 0o644, m.jwks()), reason: "allowed"},
		{name: "Google's scheme-less iss with http", detail: `has issuer "http://accounts.google.com"`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = "http://accounts.google.com" })),
			policy: policy("https://accounts.google.com", advRules), prepare: pinFile("jwks_file", "", 0o644, m.jwks()), reason: "unknown_issuer"},
		{name: "scheme-less iss for an issuer other than Google's", detail: `has issuer "` + strings.TrimPrefix(iss, "http://") + `"`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = strings.TrimPrefix(iss, "http://") })), reason: "unknown_issuer"},
		{name: "discovery redirects (to the real OP)", detail: "which verify does not follow", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = redirector })),
			policy: policy(redirector, advRules), reason: "keys_unavailable"},

		// The client's key: bounded before any signature is checked.
		{name: "client key of 100,000 bits with exponent 2^31-1 in the PK token", detail: "is not the key the ID token commits to", principal: "alice", cert: m.hugeClientKey(), reason: "key_mismatch"},

		// The refreshed ID token passes the original's rules.
		{name: "control: refreshed ID token continuing the login", principal: "alice", cert: m.refreshed(m.opSigner("RS256", m.kid), nil), reason: "allowed"},
		{name: "refreshed ID token typed at+jwt", detail: `refreshed ID token: the OP's signed token has typ "at+jwt"`, principal: "alice", cert: m.refreshed(m.typedOPSigner("at+jwt"), nil), reason: "refreshed_token_invalid"},
		{name: "refreshed ID token with azp of another client", detail: `refreshed ID token: authorized party (azp) "other-client"`, principal: "alice", reason: "refreshed_token_invalid",
			cert: m.refreshed(m.opSigner("RS256", m.kid), func(c map[string]any) { c["azp"] = "other-client" })},

		// Pinned keys and CA roots are trust boundaries: others must not be able to write them.
		{name: "control: pinned jwks_file", principal: "alice", cert: honest, prepare: pinFile("jwks_file", "", 0o644, m.jwks()), reason: "allowed"},
		{name: "pinned jwks_file writable by others", detail: "jwks.data is writable by group or others (mode 0666)", principal: "alice", cert: honest, prepare: pinFile("jwks_file", "", 0o666, m.jwks()), reason: "provider_broken"},
		{name: "pinned jwks_file in a directory writable by others", detail: "/open is writable by group or others (mode 0777)", principal: "alice", cert: honest, prepare: pinFile("jwks_file", "open", 0o644, m.jwks()), reason: "provider_broken"},
		{name: "pinned jwks_file owned by nobody", detail: "jwks.data is owned by uid 65534", principal: "alice", cert: honest, prepare: chownAfter(pinFile("jwks_file", "", 0o644, m.jwks()), "jwks_file", nobody), reason: "provider_broken"},
		{name: "ca_file writable by group", detail: "ca.data is writable by group or others (mode 0664)", principal: "alice", cert: honest, prepare: pinFile("ca_file", "", 0o664, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")), reason: "provider_broken"},

		// Time.
		{name: "expired 24h after iat", detail: "(24h0m0s after iat)", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iat"] = now.Add(-25 * time.Hour).Unix() })), reason: "token_expired"},
		{name: "expiration oidc and exp in the past", detail: "(provider uses the token's exp)", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix() })),
			policy: strings.Replace(base, "expiration: 24h", "expiration: oidc", 1), reason: "token_expired"},
		{name: "iat in the future beyond the skew", detail: "more than 2m0s in the future", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })), reason: "issued_in_future"},
		{name: "nbf in the future beyond the skew", detail: "(nbf), more than 2m0s from now", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), reason: "token_not_yet_valid"},
		{name: "control: nbf within the skew", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), reason: "allowed"},
		{name: "nbf not a number", detail: "token's nbf is not a number", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["nbf"] = "soon" })), reason: "claims_malformed"},

		// Claims against the policy.
		{name: "email_verified false", detail: "policy denies alice@example.com as alice", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["email_verified"] = false })), reason: "email_not_verified"},
		{name: "email_verified missing", detail: "policy denies alice@example.com as alice", principal: "alice", cert: m.forge(with(func(c map[string]any) { delete(c, "email_verified") })), reason: "email_not_verified"},
		{name: "email_verified the string true", detail: "policy denies alice@example.com as alice", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["email_verified"] = "true" })), reason: "email_not_verified"},
		{name: "email_domain lookalike example.com.evil.io", detail: "policy denies alice@example.com.evil.io as corp", principal: "corp", cert: m.forge(with(func(c map[string]any) { c["email"] = "alice@example.com.evil.io" })), reason: "no_matching_identity"},
		{name: "email_domain lookalike evilexample.com", detail: "policy denies alice@evilexample.com as corp", principal: "corp", cert: m.forge(with(func(c map[string]any) { c["email"] = "alice@evilexample.com" })), reason: "no_matching_identity"},
		{name: "control: email_domain in upper case", principal: "corp", cert: m.forge(with(func(c map[string]any) { c["email"] = "alice@EXAMPLE.com" })), reason: "allowed"},
		{name: "email with two @ against email_domain", detail: "policy denies x@evil.org@example.com as corp", principal: "corp", cert: m.forge(with(func(c map[string]any) { c["email"] = "x@evil.org@example.com" })), reason: "no_matching_identity"},
		{name: "email with a quoted local part against email_domain", detail: `policy denies "x@evil.org"@example.com as corp`, principal: "corp", cert: m.forge(with(func(c map[string]any) { c["email"] = `"x@evil.org"@example.com` })), reason: "no_matching_identity"},
		{name: "email with a trailing space against email", detail: "policy denies alice@example.com  as alice", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["email"] = "alice@example.com " })), reason: "no_matching_identity"},
		{name: "malformed email beside a deny entry", detail: "policy denies  mallory@example.com as ops", principal: "ops", cert: m.forge(with(func(c map[string]any) { c["email"] = " mallory@example.com" })),
			policy: base + "deny:\n  - email: mallory@example.com\n", reason: "denied_by_deny_list"},
		{name: "control: groups as a single string", principal: "ops", cert: m.forge(with(func(c map[string]any) { c["groups"] = "admins" })), reason: "allowed"},
		{name: "groups as one string never split", detail: "policy denies alice@example.com as ops", principal: "ops", cert: m.forge(with(func(c map[string]any) { c["groups"] = "dev,admins" })), reason: "no_matching_identity"},
		{name: "groups as a number", detail: "policy denies alice@example.com as ops", principal: "ops", cert: m.forge(with(func(c map[string]any) { c["groups"] = 7 })), reason: "no_matching_identity"},
		{name: "control: iat with a fraction", principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iat"] = float64(now.Unix()) + 0.25 })), reason: "allowed"},

		// The principal (%u).
		{name: "principal with a newline", detail: `principal "alice\nroot" is not a valid user name`, principal: "alice\nroot", cert: honest, reason: "bad_request"},
		{name: "principal with a quote", detail: `principal "alice\"" is not a valid user name`, principal: `alice"`, cert: honest, reason: "bad_request"},
		{name: "principal with a comma", detail: `principal "alice,root" is not a valid user name`, principal: "alice,root", cert: honest, reason: "bad_request"},
		{name: "principal with a dollar", detail: `principal "alice$" is not a valid user name`, principal: "alice$", cert: honest, reason: "bad_request"},
		{name: "principal with a leading dash", detail: `principal "-alice" is not a valid user name`, principal: "-alice", cert: honest, reason: "bad_request"},
		{name: "principal with a leading dash, no --", principal: "-alice", cert: honest, reason: notRun},
		{name: "principal of 1000 characters", detail: `principal "` + strings.Repeat("a", 80) + `…" is not a valid user name`, principal: strings.Repeat("a", 1000), cert: honest, reason: "bad_request"},
		{name: "empty principal", detail: `principal "" is not a valid user name`, principal: "", cert: honest, reason: "bad_request"},

		// The policy.
		{name: "rule for alice used for root", detail: "policy denies alice@example.com as root", principal: "root", cert: honest, reason: "no_rule_for_principal"},
		{name: "deny entry beside a matching allow", detail: "policy denies alice@example.com as alice", principal: "alice", cert: honest, policy: base + "deny:\n  - email: alice@example.com\n", reason: "denied_by_deny_list"},
		{name: "policy writable by group", detail: "policies.yaml is writable by group or others (mode 0664)", principal: "alice", cert: honest, prepare: chmod(0o664), reason: "policy_error"},
		{name: "policy writable by others", detail: "policies.yaml is writable by group or others (mode 0646)", principal: "alice", cert: honest, prepare: chmod(0o646), reason: "policy_error"},
		{name: "policy owned by nobody", detail: "policies.yaml is owned by uid 65534, which is not trusted", principal: "alice", cert: honest, prepare: func(p string) error { return os.Chown(p, nobody, -1) }, reason: "policy_error"},
		{name: "policy directory writable by others", detail: "is writable by group or others (mode 0757)", principal: "alice", cert: honest, prepare: func(p string) error { return os.Chmod(filepath.Dir(p), 0o757) }, reason: "policy_error"},
		{name: "policy with an unknown key", detail: `policies.yaml:11: rules[0]: unknown key "identitys"`, principal: "alice", cert: honest, policy: strings.Replace(base, "identities:", "identitys:", 1), reason: "policy_error"},
		{name: "policy with a duplicate key", detail: `policies.yaml:11: rules[0]: duplicate key "provider" (first at line 10)`, principal: "alice", cert: honest, policy: strings.Replace(base, "    provider: test\n", "    provider: test\n    provider: test\n", 1), reason: "policy_error"},
		{name: "policy with a wrong type", detail: "policies.yaml:9: rules[0].principals: expected a list, found a mapping", principal: "alice", cert: honest, policy: strings.Replace(base, "principals: [alice]", "principals: {alice: 1}", 1), reason: "policy_error"},
		{name: "claim rule on typ (every token of some OPs says ID)", detail: `rules[0].identities[0].claim: claim "typ" does not identify a person`, principal: "alice", cert: honest,
			policy: strings.Replace(base, "      - email: alice@example.com\n", "      - claim: {name: typ, value: ID}\n", 1), reason: "policy_error"},
		{name: "claim rule on client_id", detail: `rules[0].identities[0].claim: claim "client_id" does not identify a person`, principal: "alice", cert: honest,
			policy: strings.Replace(base, "      - email: alice@example.com\n", "      - claim: {name: client_id, value: opkssh}\n", 1), reason: "policy_error"},
		{name: "client_ids as a string", detail: "providers.test.client_ids: expected a list, found a string", principal: "alice", cert: honest, policy: strings.Replace(base, "client_ids: [opkssh]", "client_ids: opkssh", 1), reason: "provider_broken"},
		{name: "control: good provider beside a broken one", principal: "alice", cert: honest, policy: brokenPolicy, reason: "allowed"},
		{name: "token of the broken provider", detail: `providers.broken.expiration: "forever" is neither "oidc" nor a Go duration`, principal: "alice", cert: m.forge(with(func(c map[string]any) { c["iss"] = "https://broken.example.com" })), policy: brokenPolicy, reason: "provider_broken"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			caseDir := filepath.Join(dir, "case"+strconv.Itoa(i))
			pol := filepath.Join(caseDir, "policies.yaml")
			content := tc.policy
			if content == "" {
				content = base
			}
			writeFile(t, pol, content)
			if tc.prepare != nil {
				if err := tc.prepare(pol); err != nil {
					t.Fatal(err)
				}
			}
			logFile := filepath.Join(caseDir, "verify.log")
			if err := os.WriteFile(logFile, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chown(logFile, int(adv.ids[0]), int(adv.ids[1]))
			flags := []string{"--policy", pol, "--cache-dir", cacheDir, "--log-file", logFile}
			if tc.reason == notRun {
				stdout, code := verifyAsSSHD(t, append([]string{tc.principal, tc.cert.b64, tc.cert.typ}, flags...)...)
				if logged, _ := os.ReadFile(logFile); code != 1 || stdout != "" || len(logged) != 0 {
					t.Fatalf("exit %d, stdout %q, log: %q", code, stdout, logged)
				}
				return
			}
			stdout, code := verifyAsSSHD(t, append(flags, "--", tc.principal, tc.cert.b64, tc.cert.typ)...)
			lines, decision := decisionLog(t, logFile)
			if tc.reason == "allowed" {
				if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(stdout, "cert-authority,") || lines != 1 {
					t.Fatalf("control case: exit %d, stdout %q, %d log lines: %v", code, stdout, lines, decision)
				}
			} else if code != 1 || stdout != "" {
				t.Fatalf("attack: exit %d, stdout %q (want exit 1 and nothing): %v", code, stdout, decision)
			}
			t.Logf("%v: %v", decision["reason"], decision["detail"])
			if decision["reason"] != tc.reason {
				t.Fatalf("reason %v, want %s; detail: %v", decision["reason"], tc.reason, decision["detail"])
			}
			if detail, _ := decision["detail"].(string); !strings.Contains(detail, tc.detail) {
				t.Fatalf("detail %q lacks %q", detail, tc.detail)
			}
		})
	}
	t.Logf("%d cases in %.1fs", len(cases), time.Since(start).Seconds())
}

// advRunner is the binary TestAdversarial runs and the account it runs it as.
type advRunner struct {
	bin string
	ids [2]uint32
}

var adv advRunner

// nobodyInstall copies the binary into a fresh root-owned directory (with a nobody-owned key
// cache) and makes verifyAsSSHD run it from there as nobody.
func nobodyInstall(t *testing.T) *sshdtest.Install {
	t.Helper()
	in, err := sshdtest.NewInstall(opksshBin, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Remove() })
	uid, gid := nobodyIDs(t)
	adv = advRunner{bin: in.Binary, ids: [2]uint32{uint32(uid), uint32(gid)}}
	return in
}

// nobodyLog returns a fresh, empty decision log in in's directory that nobody may write.
func nobodyLog(t *testing.T, in *sshdtest.Install) string {
	t.Helper()
	dir, err := os.MkdirTemp(in.Dir, "log-")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "verify.log")
	for _, err := range []error{os.Chmod(dir, 0o755), os.WriteFile(log, nil, 0o600), os.Chown(log, int(adv.ids[0]), int(adv.ids[1]))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return log
}

// verifyAsSSHD runs the binary as sshd would: as the unprivileged AuthorizedKeysCommandUser, no
// environment, working directory /, RLIMIT_MEMLOCK 0.
func verifyAsSSHD(t *testing.T, args ...string) (stdout string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := execAsNobody(ctx, adv.ids, adv.bin, append([]string{"verify"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running opkssh verify: %v", err)
	}
	if strings.Contains(errOut.String(), "panic") {
		t.Fatalf("verify panicked: %s", errOut.String())
	}
	return out.String(), code
}

// decisionLog returns the number of lines in the log file and its one decision, which must
// carry no token (a JWT segment starts with "eyJ").
func decisionLog(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no decision log: %v", err)
	}
	if bytes.Contains(data, []byte("eyJ")) {
		t.Fatalf("the decision log carries a token:\n%s", data)
	}
	var decisions []map[string]any
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == "opkssh verify" {
			decisions = append(decisions, m)
		}
	}
	if len(decisions) != 1 {
		t.Fatalf("%d decision lines, want 1:\n%s", len(decisions), data)
	}
	return len(lines), decisions[0]
}

func chmod(mode os.FileMode) func(string) error {
	return func(p string) error { return os.Chmod(p, mode) }
}

func uidOf(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return uid
}

// minter makes the certificates of the attacks: tokens the OP never issued, and the honest
// login's PK token put to other uses.
type minter struct {
	t         *testing.T
	op        *testop.Server
	kid       string
	opKey     crypto.Signer
	honestKey crypto.Signer // the private key of the browser login
	honestPKT []byte        // its compact PK token
}

func newMinter(t *testing.T, op *testop.Server, keyPath string) *minter {
	t.Helper()
	pemData, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(pemData)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sshcert.ReadCertFile(sshcert.CertPath(keyPath))
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := sshcert.PKToken(cert)
	if err != nil {
		t.Fatal(err)
	}
	kid, _, opKey := op.SigningKey()
	return &minter{t: t, op: op, kid: kid, opKey: opKey, honestKey: key.(crypto.Signer), honestPKT: pkt}
}

// idSigner signs an ID token payload and returns the compact JWS.
type idSigner func(payload []byte) ([]byte, error)

func signer(alg string, key any, kid string) idSigner {
	return func(payload []byte) ([]byte, error) {
		a, ok := jwa.LookupSignatureAlgorithm(alg)
		if !ok {
			panic("unknown algorithm " + alg)
		}
		return jws.Sign(payload, jws.WithKey(a, key, jws.WithProtectedHeaders(jwtHeaders(kid))))
	}
}

func (m *minter) opSigner(alg, kid string) idSigner { return signer(alg, m.opKey, kid) }

// typedOPSigner signs with the OP's key under another typ header.
func (m *minter) typedOPSigner(typ string) idSigner {
	return func(payload []byte) ([]byte, error) {
		h := jwtHeaders(m.kid)
		h.Set(jws.TypeKey, typ)
		return jws.Sign(payload, jws.WithKey(jwa.RS256(), m.opKey, jws.WithProtectedHeaders(h)))
	}
}

func unsigned(kid string) idSigner {
	return func(payload []byte) ([]byte, error) {
		return jws.Sign(payload, jws.WithInsecureNoSignature(jws.WithProtectedHeaders(jwtHeaders(kid))))
	}
}

// swapPayload signs honest claims with sign, then puts the attacker's payload in their place.
func swapPayload(sign idSigner, honest map[string]any) idSigner {
	return func(payload []byte) ([]byte, error) {
		real, err := json.Marshal(honest)
		if err != nil {
			return nil, err
		}
		tok, err := sign(real)
		if err != nil {
			return nil, err
		}
		parts := strings.Split(string(tok), ".")
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return []byte(strings.Join(parts, ".")), nil
	}
}

func jwtHeaders(kid string) jws.Headers {
	h := jws.NewHeaders()
	h.Set(jws.TypeKey, "JWT")
	if kid != "" {
		h.Set(jws.KeyIDKey, kid)
	}
	return h
}

// forge is a token the OP signed for claims it never vouched for.
func (m *minter) forge(claims map[string]any) cred {
	return m.mint(claims, func(payload []byte) ([]byte, error) {
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			return nil, err
		}
		tok, err := m.op.SignIDToken(c)
		return []byte(tok), err
	})
}

func (m *minter) mint(claims map[string]any, sign idSigner) cred {
	return m.mintWith(claims, sign, nil)
}

// mintWith builds a PK token whose ID token sign makes from claims (with a nonce committing to a
// fresh client key unless claims has one), signed by the client key or by cicSigner if set, in a
// certificate of the client key with unlimited validity, as other OpenPubkey clients make them.
func (m *minter) mintWith(claims map[string]any, sign idSigner, cicSigner crypto.Signer) cred {
	m.t.Helper()
	key, alg := logintest.NewKey("ecdsa")
	cic, nonce, err := provider.NewClientInstance(key, alg)
	if err != nil {
		m.t.Fatal(err)
	}
	c := map[string]any{"nonce": nonce}
	for k, v := range claims {
		c[k] = v
	}
	payload, err := json.Marshal(c)
	if err != nil {
		m.t.Fatal(err)
	}
	idt, err := sign(payload)
	if err != nil {
		m.t.Fatal(err)
	}
	if cicSigner == nil {
		cicSigner = key
	}
	cicToken, err := cic.Sign(cicSigner, alg, idt)
	if err != nil {
		m.t.Fatal(err)
	}
	pkt, err := pktoken.New(idt, cicToken)
	if err != nil {
		m.t.Fatal(err)
	}
	compact, err := pkt.Compact()
	if err != nil {
		m.t.Fatal(err)
	}
	return m.wrap(key, compact)
}

func (m *minter) wrap(key crypto.Signer, compact []byte) cred {
	m.t.Helper()
	c, err := logintest.Wrap(key, compact, time.Time{}, time.Time{})
	if err != nil {
		m.t.Fatal(err)
	}
	return cred{c.CertB64, c.Type}
}

// expiredCert is the honest login in a certificate whose validity ended an hour ago.
func (m *minter) expiredCert() cred {
	m.t.Helper()
	c, err := logintest.Wrap(m.honestKey, m.honestPKT, time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		m.t.Fatal(err)
	}
	return cred{c.CertB64, c.Type}
}

// otherNonce is a correct commitment, but to a key the certificate does not carry.
func (m *minter) otherNonce() string {
	key, alg := logintest.NewKey("ecdsa")
	_, nonce, err := provider.NewClientInstance(key, alg)
	if err != nil {
		m.t.Fatal(err)
	}
	return nonce
}

func (m *minter) opPublicKeyBytes() (pemBytes, jwkJSON []byte) {
	der, err := x509.MarshalPKIXPublicKey(m.opKey.Public())
	if err != nil {
		m.t.Fatal(err)
	}
	k, err := jwk.Import(m.opKey.Public())
	if err != nil {
		m.t.Fatal(err)
	}
	k.Set(jwk.KeyIDKey, m.kid)
	jwkJSON, err = json.Marshal(k)
	if err != nil {
		m.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), jwkJSON
}

// honestEdited wraps the honest PK token, its ':'-separated segments edited, in a certificate
// of the honest key.
func (m *minter) honestEdited(edit func(segs []string) []string) cred {
	return m.wrap(m.honestKey, []byte(strings.Join(edit(strings.Split(string(m.honestPKT), ":")), ":")))
}

// tamperHonest replaces old by new in the honest PK token's payload, leaving both signatures.
func (m *minter) tamperHonest(old, new string) cred {
	return m.honestEdited(func(segs []string) []string {
		payload, err := base64.RawURLEncoding.DecodeString(segs[0])
		if err != nil || !bytes.Contains(payload, []byte(old)) {
			m.t.Fatalf("honest payload lacks %q (%v)", old, err)
		}
		segs[0] = base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(old), []byte(new), 1))
		return segs
	})
}

// cosigned adds a cosigner signature (typ COS) over the honest payload.
func (m *minter) cosigned() cred {
	m.t.Helper()
	pkt, err := pktoken.NewFromCompact(m.honestPKT)
	if err != nil {
		m.t.Fatal(err)
	}
	cosKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cos, err := pkt.SignToken(cosKey, "ES256", map[string]any{"typ": "COS", "iss": "https://cosigner.example.com"})
	if err != nil {
		m.t.Fatal(err)
	}
	if err := pkt.AddSignature(cos, pktoken.COS); err != nil {
		m.t.Fatal(err)
	}
	compact, err := pkt.Compact()
	if err != nil {
		m.t.Fatal(err)
	}
	return m.wrap(m.honestKey, compact)
}

// selfCert is a user certificate for the honest key with the given extensions, signed by by.
func (m *minter) selfCert(ext map[string]string, by crypto.Signer) cred {
	m.t.Helper()
	pub, err := ssh.NewPublicKey(m.honestKey.Public())
	if err != nil {
		m.t.Fatal(err)
	}
	s, err := ssh.NewSignerFromSigner(by)
	if err != nil {
		m.t.Fatal(err)
	}
	c := &ssh.Certificate{Key: pub, CertType: ssh.UserCert, ValidPrincipals: []string{sshcert.WildcardPrincipal},
		ValidBefore: ssh.CertTimeInfinity, Permissions: ssh.Permissions{Extensions: ext}}
	if err := c.SignCert(rand.Reader, s); err != nil {
		m.t.Fatal(err)
	}
	return cred{base64.StdEncoding.EncodeToString(c.Marshal()), c.Type()}
}

func (m *minter) crossSigned(by crypto.Signer) cred {
	return m.selfCert(map[string]string{sshcert.ExtensionPKToken: string(m.honestPKT)}, by)
}

// withExtension puts raw in the openpubkey-pkt extension, or leaves the extension out if nil.
func (m *minter) withExtension(raw []byte) cred {
	ext := map[string]string{"permit-pty": ""}
	if raw != nil {
		ext[sshcert.ExtensionPKToken] = string(raw)
	}
	return m.selfCert(ext, m.honestKey)
}

func (m *minter) plainKey() cred {
	pub, err := ssh.NewPublicKey(m.honestKey.Public())
	if err != nil {
		m.t.Fatal(err)
	}
	return cred{base64.StdEncoding.EncodeToString(pub.Marshal()), pub.Type()}
}

// startRedirector serves a loopback issuer that redirects every request to target's same path,
// as an OP moved behind a redirect (or an attacker sending verify from https to http) would.
func startRedirector(t *testing.T, target string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// jwks is the OP's JWKS document as it serves it.
func (m *minter) jwks() []byte {
	m.t.Helper()
	resp, err := http.Get(m.op.Issuer() + "/jwks")
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		m.t.Fatal(err)
	}
	return data
}

// pinFile writes content beside the policy (in subdir, made world-writable, if not "") with
// mode and names it as the test provider's setting (jwks_file or ca_file).
func pinFile(setting, subdir string, mode os.FileMode, content []byte) func(string) error {
	return func(pol string) error {
		dir := filepath.Dir(pol)
		if subdir != "" {
			dir = filepath.Join(dir, subdir)
			if err := os.Mkdir(dir, 0o777); err != nil {
				return err
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				return err
			}
		}
		path := filepath.Join(dir, strings.TrimSuffix(setting, "_file")+".data")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
		src, err := os.ReadFile(pol)
		if err != nil {
			return err
		}
		edited := strings.Replace(string(src), "    client_ids: [opkssh]\n", "    client_ids: [opkssh]\n    "+setting+": "+path+"\n", 1)
		return os.WriteFile(pol, []byte(edited), 0o644)
	}
}

// chownAfter runs prepare, then gives the file the policy names in setting to uid.
func chownAfter(prepare func(string) error, setting string, uid int) func(string) error {
	return func(pol string) error {
		if err := prepare(pol); err != nil {
			return err
		}
		return os.Chown(filepath.Join(filepath.Dir(pol), strings.TrimSuffix(setting, "_file")+".data"), uid, -1)
	}
}

// hugeClientKey is the honest login's PK token with its client instance claims naming a
// 100,000-bit RSA key with exponent 2^31-1 (nobody holds its private key, nobody needs to), in a
// certificate of the honest key: checking the client signature with that key would cost seconds.
func (m *minter) hugeClientKey() cred {
	m.t.Helper()
	parts := strings.Split(string(m.honestPKT), ":")
	raw, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		m.t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(raw, &hdr); err != nil {
		m.t.Fatal(err)
	}
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100_000))
	n.SetBit(n, 99_999, 1)
	n.SetBit(n, 0, 1)
	hdr["alg"] = "RS256"
	hdr["upk"] = map[string]any{"kty": "RSA", "alg": "RS256", "n": base64.RawURLEncoding.EncodeToString(n.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(1<<31 - 1).Bytes())}
	raw, _ = json.Marshal(hdr)
	parts[3] = base64.RawURLEncoding.EncodeToString(raw)
	return m.wrap(m.honestKey, []byte(strings.Join(parts, ":")))
}

// refreshed is the honest PK token with a refreshed ID token appended: the original's claims with
// a later iat (edited by edit, if set), signed by sign. It continues the login through the nonce.
func (m *minter) refreshed(sign idSigner, edit func(map[string]any)) cred {
	m.t.Helper()
	parts := strings.Split(string(m.honestPKT), ":")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		m.t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		m.t.Fatal(err)
	}
	c["iat"], c["exp"] = time.Now().Unix(), time.Now().Add(time.Hour).Unix()
	if edit != nil {
		edit(c)
	}
	payload, _ := json.Marshal(c)
	fresh, err := sign(payload)
	if err != nil {
		m.t.Fatal(err)
	}
	return m.wrap(m.honestKey, []byte(string(m.honestPKT)+"."+string(fresh)))
}
