package verifier

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/user"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/openpubkey/openpubkey/pktoken"
	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/sshcert"
	"github.com/opkssh-team/opkssh/policy"
)

// DefaultClockSkew is how far in the future a token's iat may be before it is refused.
const DefaultClockSkew = 2 * time.Minute

// Options are what a decision depends on besides the request.
type Options struct {
	// LoadPolicy returns the policy; an error denies everyone (fail closed).
	LoadPolicy func() (*policy.Policy, error)
	Keys       KeySource        // an in-memory Cache if nil
	Now        func() time.Time // time.Now if nil
	ClockSkew  time.Duration    // DefaultClockSkew if zero
	Log        *slog.Logger     // the decision log; discarded if nil
	// LookupUser finds the principal's uid and home for user policies; user.Lookup if nil.
	LookupUser func(name string) (*user.User, error)
	// Chain, if set, answers for keys that are not opkssh certificates (chain.go); otherwise the
	// policy's chain block does, if it has one.
	Chain *Chain
}

// Request is what sshd passes: %u, %t, %k, and optionally %C (client and server address and port),
// whose first field is the client address that require.from conditions test.
type Request struct {
	Principal  string
	KeyType    string
	CertB64    string
	ClientAddr string
}

// Result is a decision. Line is set only when Allowed.
type Result struct {
	Allowed     bool
	Line        string
	Reason      string
	Detail      string
	Explain     []string
	Provider    string
	Issuer      string
	Subject     string
	Email       string
	Fingerprint string
	Keys        KeyInfo // where the OP's keys came from
	// TokenVerified says the identity fields were checked against the OP's signature; when false
	// they are what an unverified token claimed, logged to show who tried.
	TokenVerified bool
	Refreshed     bool       // the expiration rule was applied to the PK token's refreshed ID token
	UserPolicy    UserPolicy // the principal's own policy file, when one took part
	Chain         string     // where the chained command that answered was configured
}

// Verify decides a request and writes one decision line to the log. It never panics on input:
// a panic anywhere below is turned into a denial.
func Verify(ctx context.Context, opts Options, req Request) (res Result) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Keys == nil {
		opts.Keys = &Cache{}
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = DefaultClockSkew
	}
	defer func() {
		if r := recover(); r != nil {
			res = Result{Reason: ReasonTokenInvalid, Detail: fmt.Sprintf("internal error: %v", r)}
		}
		logDecision(opts.Log, req, res)
	}()
	return decide(ctx, opts, req)
}

func decide(ctx context.Context, opts Options, req Request) Result {
	var res Result
	fail := func(code string, err error) Result {
		res.Allowed, res.Line, res.Reason, res.Detail = false, "", code, err.Error()
		return res
	}
	// Before the principal check: the chained command has its own idea of user names (SSSD's
	// alice@corp.example.com), and gets them as an argument, never through a shell.
	if !IsOpksshCertificate(req.KeyType, req.CertB64) {
		if c := chainFor(opts); c != nil {
			return chained(ctx, c, req)
		}
	}
	if !policy.ValidPrincipal(req.Principal) {
		return fail(ReasonBadRequest, fmt.Errorf("principal %q is not a valid user name", clip(req.Principal)))
	}
	if !strings.HasSuffix(req.KeyType, "-cert-v01@openssh.com") {
		return fail(ReasonNotACertificate, fmt.Errorf("key type %q is a plain key; opkssh only vouches for certificates", clip(req.KeyType)))
	}
	now := opts.Now()
	cert, err := sshcert.Parse(req.KeyType, req.CertB64, now)
	if errors.Is(err, sshcert.ErrExpired) {
		return fail(ReasonCertExpired, err)
	}
	if err != nil {
		return fail(ReasonCertMalformed, err)
	}
	res.Fingerprint = ssh.FingerprintSHA256(cert.Key)
	raw, err := sshcert.PKToken(cert)
	if err != nil {
		return fail(ReasonNoPKToken, err)
	}
	pkt, err := ParsePKToken(raw)
	if err != nil {
		return fail(ReasonPKTokenMalformed, err)
	}
	claims, err := decodeClaims(pkt.Payload)
	if err != nil {
		return fail(ReasonClaimsMalformed, err)
	}
	res.Issuer, res.Subject, res.Email = claimString(claims, "iss"), claimString(claims, "sub"), claimString(claims, "email")

	pol, err := opts.LoadPolicy()
	if err != nil {
		return fail(ReasonPolicyError, err)
	}
	prov, idv, err := checkPKToken(ctx, pol, opts.Keys, cert, pkt, claims)
	if prov != nil {
		res.Provider = prov.Name
	}
	if idv != nil {
		res.Keys = idv.keyInfo
	}
	if err != nil {
		return fail(reasonOf(err, ReasonTokenInvalid), err)
	}
	res.TokenVerified = true
	timeClaims, refreshed, err := idv.refreshedClaims(ctx, pkt, claims, now.Add(opts.ClockSkew))
	if err != nil {
		return fail(reasonOf(err, ReasonRefreshedInvalid), err)
	}
	res.Refreshed = refreshed
	if refreshed {
		// The original's nbf holds too: a refreshed token does not make a login valid earlier.
		if code, err := checkNotBefore(claims, now, opts.ClockSkew); err != nil {
			return fail(code, err)
		}
	}
	if code, err := checkTime(timeClaims, prov.Expiration, now, opts.ClockSkew); err != nil {
		return fail(code, err)
	}

	d := pol.EvaluateFrom(req.Principal, prov.Name, claims, clientIP(req.ClientAddr))
	d, res.UserPolicy = userPolicyDecision(opts, pol, req.Principal, prov.Name, claims, d)
	res.Explain = d.Explain
	if !d.Allowed {
		return fail(d.Reason, fmt.Errorf("policy denies %s as %s", identityOf(res), req.Principal))
	}
	certPrincipal := sshcert.WildcardPrincipal
	if sshcert.HasPrincipal(cert, req.Principal) {
		certPrincipal = req.Principal
	} else if !sshcert.HasPrincipal(cert, sshcert.WildcardPrincipal) {
		return fail(ReasonPrincipalMismatch, fmt.Errorf("certificate lists neither %q nor %q", req.Principal, sshcert.WildcardPrincipal))
	}
	res.Allowed, res.Reason = true, ReasonAllowed
	res.Detail = fmt.Sprintf("allowed by rule at %s", d.Rule.Pos)
	res.Line = authorizedKeysLine(certPrincipal, d.Rule.Options, cert.SignatureKey)
	return res
}

// checkPKToken is what a login and a signature check have in common: the PK token's provider in
// the policy (not broken), the commitment of the token to the certificate's key (before any
// signature is checked with it), the client's signature, then the OP's signature with the keys of
// the token's concrete issuer (for a multi-tenant template, the token's own tenant), issuer,
// audience and nonce. A failure is a denial carrying its reason. prov is returned once known and
// idv once the OP's keys were asked for, so that the caller can log them even on a denial.
func checkPKToken(ctx context.Context, pol *policy.Policy, keys KeySource, cert *ssh.Certificate, pkt *pktoken.PKToken, claims policy.Claims) (prov *policy.Provider, idv *idTokenVerifier, err error) {
	prov, concreteIssuer, ok := pol.ProviderForToken(claimString(claims, "iss"), claimString(claims, "tid"))
	if !ok {
		return nil, nil, deny(ReasonUnknownIssuer, fmt.Errorf("no provider in the policy has issuer %q%s", clip(claimString(claims, "iss")), tenantNote(claims)))
	}
	if perr := pol.Broken[prov.Name]; perr != nil {
		return prov, nil, deny(ReasonProviderBroken, fmt.Errorf("provider %s is disabled by a policy error: %w", prov.Name, perr))
	}
	cic, err := pkt.GetCicValues()
	if err != nil {
		return prov, nil, deny(ReasonPKTokenMalformed, err)
	}
	if err := sameKey(pkt, cert); err != nil {
		return prov, nil, deny(ReasonKeyMismatch, err)
	}
	if err := verifyCICSignature(pkt); err != nil {
		return prov, nil, deny(ReasonCICSignature, err)
	}
	keyProv := prov
	if concreteIssuer != prov.Issuer {
		cp := *prov
		cp.Issuer = concreteIssuer
		keyProv = &cp
	}
	idv = &idTokenVerifier{provider: keyProv, match: prov, keys: keys}
	if err := idv.VerifyIDToken(ctx, pkt.OpToken, cic); err != nil {
		return prov, idv, deny(reasonOf(err, ReasonTokenInvalid), err)
	}
	return prov, idv, nil
}

// authorizedKeysLine renders the single line sshd reads. principal has been validated; options
// come from the rule that allowed, which policy.ParseOptions checked when the policy loaded, and
// never from the token.
func authorizedKeysLine(principal string, options []string, key ssh.PublicKey) string {
	opts := ""
	if len(options) > 0 {
		opts = "," + strings.Join(options, ",")
	}
	return fmt.Sprintf("cert-authority,principals=\"%s\"%s %s %s", principal, opts, key.Type(), base64.StdEncoding.EncodeToString(key.Marshal()))
}

// verifyCICSignature checks the client's signature over the ID token's payload with the key the
// client instance claims name: the PK token's proof that the key holder asked for this token.
func verifyCICSignature(pkt *pktoken.PKToken) error {
	cic, err := pkt.GetCicValues()
	if err != nil {
		return fmt.Errorf("client instance claims: %w", err)
	}
	alg, ok := jwa.LookupSignatureAlgorithm(cic.KeyAlgorithm())
	if !ok || (alg != jwa.ES256() && alg != jwa.EdDSA() && alg != jwa.RS256()) {
		return fmt.Errorf("client key algorithm %q is not accepted", cic.KeyAlgorithm())
	}
	key, err := jwk.PublicKeyOf(cic.PublicKey())
	if err != nil {
		return fmt.Errorf("client key: %w", err)
	}
	payload, err := jws.Verify(pkt.CicToken, jws.WithKey(alg, key))
	if err != nil {
		return fmt.Errorf("client signature: %w", err)
	}
	if !bytes.Equal(payload, pkt.Payload) {
		return errors.New("client signature covers another payload")
	}
	return nil
}

// ParsePKToken builds the PK token from its compact form with the library's own pieces
// (SplitCompactPKToken, AddSignature), as pktoken.NewFromCompact does, minus that function's
// decoding of the claims into typed fields: it refuses a whole token whose groups is a single
// string or whose iat has a fraction, so users of such an OP could not log in at all. Here
// decodeClaims reads the claims as plain JSON values instead.
//
// The input is attacker-controlled. Exactly one OP signature and one client signature are
// accepted: the library keeps the last signature of each type, drops the others unchecked, and
// panics later on a token without a client signature.
func ParsePKToken(raw []byte) (pkt *pktoken.PKToken, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkt, err = nil, fmt.Errorf("PK token parser failed: %v", r)
		}
	}()
	tokens, freshIDToken, err := pktoken.SplitCompactPKToken(raw)
	if err != nil {
		return nil, err
	}
	if len(tokens) != 2 {
		return nil, errors.New("PK token must carry exactly two signatures, the OP's and the client's")
	}
	pkt = &pktoken.PKToken{}
	for _, token := range tokens {
		// typ is read by the same JOSE parser that AddSignature uses, so that one parser decides.
		msg, err := jws.Parse(token)
		if err != nil {
			return nil, err
		}
		if len(msg.Signatures()) != 1 {
			return nil, errors.New("each PK token part must carry exactly one signature")
		}
		typ, _ := msg.Signatures()[0].ProtectedHeaders().Type()
		sigType := pktoken.SignatureType(typ)
		switch {
		case typ == "": // as the library reads it: no typ is the OP's (Okta sends none)
			sigType = pktoken.OIDC
		case strings.EqualFold(typ, "at+jwt"):
			// The library takes an RFC 9068 access token for the ID token; verify wants an ID token,
			// which is what every supported OP signs and what the nonce commitment is made for.
			return nil, errors.New("the OP's signed token is an access token (typ at+jwt), not an ID token")
		}
		if err := pkt.AddSignature(token, sigType); err != nil {
			return nil, err
		}
	}
	if pkt.Cos != nil || len(pkt.CosToken) > 0 {
		return nil, errors.New("PK token carries a cosigner signature, which this server does not accept")
	}
	if pkt.Op == nil || pkt.Cic == nil {
		return nil, errors.New("PK token must carry exactly two signatures, the OP's and the client's")
	}
	pkt.FreshIDToken = freshIDToken
	return pkt, nil
}

func sameKey(pkt *pktoken.PKToken, cert *ssh.Certificate) error {
	cic, err := pkt.GetCicValues()
	if err != nil {
		return err
	}
	committed, err := ssh.NewPublicKey(cic.PublicKey())
	if err != nil {
		return fmt.Errorf("committed key: %w", err)
	}
	if !bytes.Equal(committed.Marshal(), cert.Key.Marshal()) {
		return fmt.Errorf("certificate key %s is not the key the ID token commits to (%s)", ssh.FingerprintSHA256(cert.Key), ssh.FingerprintSHA256(committed))
	}
	return nil
}

func decodeClaims(payload []byte) (policy.Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c policy.Claims
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("payload is not a JSON object: %w", err)
	}
	for _, k := range []string{"iss", "sub"} {
		if _, ok := c[k].(string); !ok {
			return nil, fmt.Errorf("claim %q is missing or not a string", k)
		}
	}
	if v, ok := c["email"]; ok {
		if _, ok := v.(string); !ok {
			return nil, errors.New(`claim "email" is not a string`)
		}
	}
	return c, nil
}

// checkTime applies the provider's expiration rule with our clock (openpubkey's policies have
// fixed durations and no clock to inject).
func checkTime(c policy.Claims, exp policy.Expiration, now time.Time, skew time.Duration) (string, error) {
	iat, ok := claimTime(c, "iat")
	if !ok {
		return ReasonClaimsMalformed, errors.New("token has no numeric iat")
	}
	if iat.After(now.Add(skew)) {
		return ReasonIssuedInFuture, fmt.Errorf("token issued at %s, more than %s in the future", iat.UTC().Format(time.RFC3339), skew)
	}
	if code, err := checkNotBefore(c, now, skew); err != nil {
		return code, err
	}
	if exp.UseTokenExp {
		e, ok := claimTime(c, "exp")
		if !ok {
			return ReasonClaimsMalformed, errors.New("token has no numeric exp")
		}
		if !now.Before(e) {
			return ReasonExpired, fmt.Errorf("token expired at %s (provider uses the token's exp)", e.UTC().Format(time.RFC3339))
		}
		return "", nil
	}
	if end := iat.Add(exp.FromIAT); !now.Before(end) {
		return ReasonExpired, fmt.Errorf("login expired at %s (%s after iat)", end.UTC().Format(time.RFC3339), exp.FromIAT)
	}
	return "", nil
}

// checkNotBefore refuses a token whose nbf (RFC 7519 §4.1.5) is later than now plus the skew. A
// token without nbf is fine; one whose nbf is not a number is malformed.
func checkNotBefore(c policy.Claims, now time.Time, skew time.Duration) (string, error) {
	if _, present := c["nbf"]; !present {
		return "", nil
	}
	nbf, ok := claimTime(c, "nbf")
	if !ok {
		return ReasonClaimsMalformed, errors.New("token's nbf is not a number")
	}
	if nbf.After(now.Add(skew)) {
		return ReasonNotYetValid, fmt.Errorf("token is not valid before %s (nbf), more than %s from now", nbf.UTC().Format(time.RFC3339), skew)
	}
	return "", nil
}

// tenantNote names the token's tenant in an unknown-issuer denial, for multi-tenant providers.
func tenantNote(c policy.Claims) string {
	if tid := claimString(c, "tid"); tid != "" {
		return fmt.Sprintf(" (tenant %q)", clip(tid))
	}
	return ""
}

func claimTime(c policy.Claims, name string) (time.Time, bool) {
	n, ok := c[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

func claimString(c policy.Claims, name string) string {
	s, _ := c[name].(string)
	return s
}

func identityOf(r Result) string {
	if r.Email != "" {
		return r.Email
	}
	return "sub " + r.Subject
}

// clip keeps attacker-chosen strings short in logs and errors.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func logDecision(l *slog.Logger, req Request, res Result) {
	if l == nil {
		return
	}
	decision := "deny"
	switch {
	case res.Allowed && res.Reason == ReasonChained:
		decision = "chain" // the chained command's answer, passed on: not opkssh's decision
	case res.Allowed:
		decision = "allow"
	}
	attrs := []any{
		"decision", decision, "reason", res.Reason,
		"principal", clip(req.Principal), "issuer", clip(res.Issuer), "sub", clip(res.Subject),
		"email", clip(res.Email), "provider", res.Provider, "fingerprint", res.Fingerprint,
		"detail", res.Detail,
	}
	if res.Issuer != "" {
		attrs = append(attrs, "token_verified", res.TokenVerified)
	}
	if res.Refreshed {
		attrs = append(attrs, "refreshed", true)
	}
	if res.Keys.Source != "" {
		attrs = append(attrs, "keys", res.Keys.Source)
	}
	if res.Keys.Note != "" {
		attrs = append(attrs, "keys_note", res.Keys.Note)
	}
	if res.Keys.Source == KeySourceStale {
		attrs = append(attrs, "keys_fetched_at", res.Keys.FetchedAt.UTC().Format(time.RFC3339))
	}
	if req.ClientAddr != "" {
		attrs = append(attrs, "client", clip(req.ClientAddr))
	}
	if res.Chain != "" {
		attrs = append(attrs, "chain", res.Chain)
	}
	attrs = append(attrs, res.UserPolicy.logAttrs()...)
	if len(res.Explain) > 0 {
		attrs = append(attrs, "explain", res.Explain)
	}
	l.Info("opkssh verify", attrs...)
}

// clientIP reads the client address from sshd's %C ("client-addr client-port server-addr
// server-port") or a bare address; the zero Addr when there is none.
func clientIP(c string) netip.Addr {
	f := strings.Fields(c)
	if len(f) == 0 {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
