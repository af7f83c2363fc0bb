package provider

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/openpubkey/openpubkey/pktoken"

	"github.com/opkssh-team/opkssh/internal/gqsig"
	"github.com/opkssh-team/opkssh/internal/idtoken"
)

// CI login: a job of a CI platform logs in with the workload identity token its platform gives it,
// without browser, client ID or prompt. The commitment to the fresh key travels as on the server
// side's policy kinds (verifier/ci.go):
//
//   - GitHub Actions and Forgejo Actions let the job request a token with an audience of its
//     choosing (ACTIONS_ID_TOKEN_REQUEST_URL, authenticated with ACTIONS_ID_TOKEN_REQUEST_TOKEN):
//     the audience is the commitment;
//   - GitLab CI hands the job pre-issued tokens (id_tokens: in .gitlab-ci.yml) in environment
//     variables: the commitment goes into the GQ signature's protected header (cic), and the
//     token's aud must start with OPENPUBKEY-PKTOKEN:.
//
// Either way the OP's RSA signature is replaced by a GQ256 proof of knowledge of it (internal/gqsig)
// before anything is written, so the certificate holds no ID token that could be replayed as a
// bearer token. The issuer comes from the token; its keys from that issuer's discovery document.

// CI platforms, as policy provider kinds name them.
const (
	CIGitHubActions  = "github-actions"
	CIForgejoActions = "forgejo-actions"
	CIGitLab         = "gitlab-ci"
)

// Environment variables of the platforms.
const (
	EnvActionsTokenURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvActionsTokenToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	// DefaultGitLabTokenEnv is the variable a GitLab job's id_tokens entry names by default, as
	// OpenPubkey's GitLab CI provider reads it.
	DefaultGitLabTokenEnv = "OPENPUBKEY_JWT"
	// GitLabAudiencePrefix must start the aud of a GitLab token bound by GQ (verifier/ci.go).
	GitLabAudiencePrefix = "OPENPUBKEY-PKTOKEN:"
)

// forgejoIssuerPath is where a Forgejo instance's Actions issuer lives below the instance URL.
const forgejoIssuerPath = "/api/actions"

// CIOptions control a CI login.
type CIOptions struct {
	Signer crypto.Signer
	Alg    string
	// Getenv reads the job's environment; os.Getenv in the command.
	Getenv func(string) string
	// IDTokenEnv is the GitLab variable holding the ID token; DefaultGitLabTokenEnv if "".
	IDTokenEnv string
	HTTPClient *http.Client // one with DefaultHTTPTimeout if nil
	Status     io.Writer
}

// CIResult is a CI login's PK token and the platform it came from.
type CIResult struct {
	LoginResult
	Platform string
}

// DetectCI names the CI platform of the environment, or says what is missing.
func DetectCI(getenv func(string) string, idTokenEnv string) (string, error) {
	if idTokenEnv == "" {
		idTokenEnv = DefaultGitLabTokenEnv
	}
	tokenURL := getenv(EnvActionsTokenURL)
	switch {
	case tokenURL != "" && strings.Contains(mustPath(tokenURL), forgejoIssuerPath+"/"):
		return CIForgejoActions, nil
	case tokenURL != "":
		return CIGitHubActions, nil
	case getenv("GITLAB_CI") == "true" || getenv(idTokenEnv) != "":
		return CIGitLab, nil
	case getenv("GITHUB_ACTIONS") == "true" || getenv("FORGEJO_ACTIONS") == "true" || getenv("GITEA_ACTIONS") == "true":
		return "", fmt.Errorf("%s is not set: the job may not request an ID token; give the workflow (or job) the permission \"id-token: write\" (see docs/ci.md)", EnvActionsTokenURL)
	}
	return "", errors.New("no CI platform found in the environment: opkssh login --ci runs in GitHub Actions or Forgejo Actions (with id-token: write, which sets ACTIONS_ID_TOKEN_REQUEST_URL) or in GitLab CI (with an id_tokens entry; see docs/ci.md)")
}

func mustPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Path
}

// CILogin gets the job's ID token, GQ-signs it and returns a PK token committing to opts.Signer.
func CILogin(ctx context.Context, opts CIOptions) (*CIResult, error) {
	getenv := opts.Getenv
	platform, err := DetectCI(getenv, opts.IDTokenEnv)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	cic, commitment, err := NewClientInstance(opts.Signer, opts.Alg)
	if err != nil {
		return nil, err
	}
	var raw []byte
	extra := map[string]string{}
	switch platform {
	case CIGitHubActions, CIForgejoActions:
		if raw, err = requestActionsToken(ctx, hc, getenv, commitment); err != nil {
			return nil, err
		}
	case CIGitLab:
		name := opts.IDTokenEnv
		if name == "" {
			name = DefaultGitLabTokenEnv
		}
		tok := strings.TrimSpace(getenv(name))
		if tok == "" {
			return nil, fmt.Errorf("GitLab CI job without the ID token variable %s: add to the job\n  id_tokens:\n    %s:\n      aud: %s<your server>\n(or pass --id-token-env NAME for the variable your id_tokens entry names)", name, name, GitLabAudiencePrefix)
		}
		raw = []byte(tok)
		extra["cic"] = commitment
	}
	claims, err := unverifiedCIClaims(raw)
	if err != nil {
		return nil, err
	}
	if err := checkCIClaims(platform, claims, commitment); err != nil {
		return nil, err
	}
	pub, jkt, err := opRSAKey(ctx, hc, claims.Issuer, raw)
	if err != nil {
		return nil, err
	}
	extra["jkt"] = jkt
	gqToken, err := gqsig.SignJWT(pub, raw, extra)
	if err != nil {
		return nil, fmt.Errorf("GQ-signing the %s ID token: %w", platform, err)
	}
	cicToken, err := cic.Sign(opts.Signer, opts.Alg, gqToken)
	if err != nil {
		return nil, fmt.Errorf("signing the client instance claims: %w", err)
	}
	pkt, err := pktoken.New(gqToken, cicToken)
	if err != nil {
		return nil, fmt.Errorf("assembling the PK token: %w", err)
	}
	if opts.Status != nil {
		fmt.Fprintf(opts.Status, "Got a %s ID token from %s for %s (GQ-signed: the token itself is not kept).\n", platform, claims.Issuer, claims.Subject)
	}
	return &CIResult{Platform: platform, LoginResult: LoginResult{PKToken: pkt, Claims: IDClaims{
		Issuer: claims.Issuer, Subject: claims.Subject, IssuedAt: time.Unix(claims.IssuedAt, 0), Expiry: time.Unix(claims.Expiry, 0),
	}}}, nil
}

// maxCIResponse bounds the token request's response; GitHub's is about 2 KB.
const maxCIResponse = 64 << 10

// requestActionsToken asks GitHub's or Forgejo's token endpoint for an ID token with the
// commitment as its audience.
func requestActionsToken(ctx context.Context, hc *http.Client, getenv func(string) string, audience string) ([]byte, error) {
	rawURL, bearer := getenv(EnvActionsTokenURL), getenv(EnvActionsTokenToken)
	if bearer == "" {
		return nil, fmt.Errorf("%s is set but %s is not: the runner did not hand the job its request token; check the workflow's \"id-token: write\" permission", EnvActionsTokenURL, EnvActionsTokenToken)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%s is not an http(s) URL", EnvActionsTokenURL)
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting the job's ID token from %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCIResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading the ID token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = fmt.Sprintf(" (%s was refused: it belongs to another job or has expired)", EnvActionsTokenToken)
		}
		return nil, fmt.Errorf("the ID token request to %s answered %s%s", u.Host, resp.Status, hint)
	}
	return parseActionsTokenResponse(body)
}

// parseActionsTokenResponse reads {"value": "<JWT>"} (GitHub and Forgejo answer so).
func parseActionsTokenResponse(body []byte) ([]byte, error) {
	if len(body) > maxCIResponse {
		return nil, errors.New("the ID token response is too large")
	}
	var r struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("the ID token response is not JSON: %w", err)
	}
	if r.Value == "" {
		return nil, errors.New("the ID token response has no value")
	}
	return []byte(r.Value), nil
}

// ciClaims are the claims the job side reads before the token is verified (opRSAKey's check
// through gqsig.SignJWT follows).
type ciClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	IssuedAt int64           `json:"iat"`
	Expiry   int64           `json:"exp"`
}

func unverifiedCIClaims(token []byte) (*ciClaims, error) {
	parts := strings.Split(string(token), ".")
	if len(parts) != 3 {
		return nil, errors.New("the CI ID token is not a JWT (header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("the CI ID token's payload: %w", err)
	}
	var c ciClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("the CI ID token's claims: %w", err)
	}
	if c.Issuer == "" || c.Subject == "" || c.Expiry == 0 {
		return nil, errors.New("the CI ID token lacks iss, sub or exp")
	}
	// The OP's keys are fetched from iss: https only, http for a test OP on loopback.
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && idtoken.IsLoopbackHost(u.Hostname()))) {
		return nil, fmt.Errorf("the CI ID token's issuer %q is not an https URL", c.Issuer)
	}
	return &c, nil
}

// checkCIClaims catches, before anything is signed, a token the server would refuse.
func checkCIClaims(platform string, c *ciClaims, commitment string) error {
	var aud string
	if err := json.Unmarshal(c.Aud, &aud); err != nil {
		var list []string
		if json.Unmarshal(c.Aud, &list) != nil || len(list) != 1 {
			return errors.New("the CI ID token's aud is not a single string")
		}
		aud = list[0]
	}
	switch platform {
	case CIGitLab:
		if !strings.HasPrefix(aud, GitLabAudiencePrefix) {
			return fmt.Errorf("the GitLab ID token's aud is %q; it must start with %s (set aud: %s<your server> in the job's id_tokens entry)", aud, GitLabAudiencePrefix, GitLabAudiencePrefix)
		}
	default:
		if aud != commitment {
			return fmt.Errorf("the %s token endpoint ignored the requested audience (aud %q)", platform, aud)
		}
	}
	if time.Unix(c.Expiry, 0).Before(time.Now()) {
		return fmt.Errorf("the CI ID token expired at %s; GitLab tokens live as long as the job's timeout, GitHub's a few minutes", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// maxDiscovery bounds discovery documents and key sets read at login.
const maxDiscovery = 1 << 20

// opRSAKey fetches the issuer's keys through its discovery document and returns the RSA key
// that signed token, with its RFC 7638 thumbprint (the GQ header's jkt).
func opRSAKey(ctx context.Context, hc *http.Client, issuer string, token []byte) (*rsa.PublicKey, string, error) {
	hdrSeg, _, _ := strings.Cut(string(token), ".")
	hdrJSON, err := base64.RawURLEncoding.DecodeString(hdrSeg)
	if err != nil {
		return nil, "", fmt.Errorf("the CI ID token's header: %w", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return nil, "", fmt.Errorf("the CI ID token's header: %w", err)
	}
	if hdr.Alg != "RS256" {
		return nil, "", fmt.Errorf("the CI ID token is signed with %q; GQ signing needs RS256", hdr.Alg)
	}
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, hc, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, "", fmt.Errorf("discovery of the CI issuer %s: %w", issuer, err)
	}
	if disc.Issuer != issuer || disc.JWKSURI == "" {
		return nil, "", fmt.Errorf("the discovery document of %s names issuer %q and jwks_uri %q", issuer, disc.Issuer, disc.JWKSURI)
	}
	body, err := getBody(ctx, hc, disc.JWKSURI)
	if err != nil {
		return nil, "", fmt.Errorf("keys of the CI issuer %s: %w", issuer, err)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, "", fmt.Errorf("keys of the CI issuer %s: %w", issuer, err)
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if kid, _ := k.KeyID(); hdr.Kid != "" && kid != hdr.Kid {
			continue
		}
		var pub rsa.PublicKey
		if jwk.Export(k, &pub) != nil {
			continue
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, "", err
		}
		return &pub, base64.RawURLEncoding.EncodeToString(tp), nil
	}
	return nil, "", fmt.Errorf("the CI issuer %s publishes no RSA key with kid %q", issuer, hdr.Kid)
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	body, err := getBody(ctx, hc, u)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

func getBody(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscovery+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxDiscovery {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u, maxDiscovery)
	}
	return body, nil
}
