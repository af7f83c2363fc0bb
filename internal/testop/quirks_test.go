package testop

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"golang.org/x/oauth2"
)

// quirkLogin starts an OP with q that auto-approves user, logs in with the client "opkssh" and
// returns the OP, the flow and the token response.
func quirkLogin(t *testing.T, opts Options, user string) (*Server, *flow, *oauth2.Token) {
	t.Helper()
	opts.AutoApprove = user
	op := startOP(t, opts)
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	return op, f, f.login(t, "", "")
}

// claimsOf decodes the payload of a compact JWS without verifying it.
func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyGoOIDC checks raw as a relying party of issuer would, with go-oidc.
func verifyGoOIDC(t *testing.T, issuer, raw string) *oidc.IDToken {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%s): %v", issuer, err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "opkssh"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return idt
}

func discoveryAt(t *testing.T, url string) (int, discovery) {
	t.Helper()
	var d discovery
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, d
}

func TestQuirkIssuerPath(t *testing.T) {
	for _, path := range []string{"/", "/realms/x/", "/realms/x"} {
		t.Run(path, func(t *testing.T) {
			op, _, tok := quirkLogin(t, Options{Quirks: Quirks{IssuerPath: path}}, "alice")
			if op.Issuer() != op.URL()+path {
				t.Fatalf("Issuer %q, URL %q", op.Issuer(), op.URL())
			}
			code, d := discoveryAt(t, strings.TrimSuffix(op.Issuer(), "/")+"/.well-known/openid-configuration")
			if code != http.StatusOK || d.Issuer != op.Issuer() || d.TokenEndpoint != op.URL()+"/token" {
				t.Fatalf("discovery: %d %+v", code, d)
			}
			idt := verifyGoOIDC(t, op.Issuer(), idTokenOf(t, tok))
			if idt.Issuer != op.Issuer() {
				t.Errorf("iss %q, want %q", idt.Issuer, op.Issuer())
			}
		})
	}
}

func TestQuirkAlgs(t *testing.T) {
	for _, alg := range Algs {
		t.Run(alg, func(t *testing.T) {
			op, f, tok := quirkLogin(t, Options{Alg: alg, Keys: 1}, "alice")
			if _, got, _ := op.SigningKey(); got != alg {
				t.Fatalf("SigningKey alg %s", got)
			}
			raw := idTokenOf(t, tok)
			msg, err := jws.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm(); a.String() != alg {
				t.Errorf("header alg %s", a)
			}
			var jwks map[string][]map[string]any
			getJSON(t, op.URL()+"/jwks", &jwks)
			if k := jwks["keys"][0]; k["alg"] != alg || k["kty"] != map[byte]string{'R': "RSA", 'P': "RSA", 'E': "EC"}[alg[0]] && !(alg == "EdDSA" && k["kty"] == "OKP" && k["crv"] == "Ed25519") {
				t.Errorf("JWKS key %v", k)
			}
			idt := verifyGoOIDC(t, op.Issuer(), raw)
			if idt.Nonce != f.nonce {
				t.Errorf("nonce %q", idt.Nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
		})
	}
	if _, err := Start(Options{Alg: "HS256"}); err == nil {
		t.Error("Alg HS256 accepted")
	}
}

func TestQuirkNoKID(t *testing.T) {
	op, _, tok := quirkLogin(t, Options{Quirks: Quirks{NoKID: true}}, "alice")
	raw := idTokenOf(t, tok)
	if kid := kidOf(t, raw); kid != "" {
		t.Fatalf("kid %q in the header", kid)
	}
	signed, err := op.SignIDToken(map[string]any{"sub": "x"})
	if err != nil || kidOf(t, signed) != "" {
		t.Fatalf("SignIDToken: kid %q, %v", kidOf(t, signed), err)
	}
	var jwks map[string][]map[string]any
	getJSON(t, op.URL()+"/jwks", &jwks)
	if len(jwks["keys"]) < 2 {
		t.Fatalf("JWKS has %d keys, want several", len(jwks["keys"]))
	}
	verifyGoOIDC(t, op.Issuer(), raw) // go-oidc tries every key when there is no kid
}

func TestQuirkForeignJWKs(t *testing.T) {
	op, _, tok := quirkLogin(t, Options{Quirks: Quirks{ForeignJWKs: true}}, "alice")
	resp, err := http.Get(op.URL() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 5 {
		t.Fatalf("JWKS has %d keys, want 3 foreign and 2 real", len(set.Keys))
	}
	var kinds []string
	for _, raw := range set.Keys[:3] {
		var k map[string]any
		json.Unmarshal(raw, &k)
		kinds = append(kinds, k["kty"].(string)+"/"+k["alg"].(string)+"/"+k["use"].(string))
		if k["kty"] == "AKP" {
			pub, err := base64.RawURLEncoding.DecodeString(k["pub"].(string))
			if err != nil || len(pub) != 1312 {
				t.Errorf("AKP pub: %d bytes, %v", len(pub), err)
			}
		}
	}
	if want := []string{"AKP/ML-DSA-44/sig", "QUIRK-UNKNOWN/QK1/sig", "RSA/RSA-OAEP-256/enc"}; !slices.Equal(kinds, want) {
		t.Errorf("foreign keys %v, want %v", kinds, want)
	}
	// The real keys are still there and verify the token.
	kid := kidOf(t, idTokenOf(t, tok))
	found := false
	for _, raw := range set.Keys[3:] {
		k, err := jwk.ParseKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := k.KeyID(); id == kid {
			found = true
			if _, err := jws.Verify([]byte(idTokenOf(t, tok)), jws.WithKey(jwa.RS256(), k)); err != nil {
				t.Errorf("verify with the published key: %v", err)
			}
		}
	}
	if !found {
		t.Errorf("signing key %s not among the real keys", kid)
	}
	verifyGoOIDC(t, op.Issuer(), idTokenOf(t, tok))
}

func TestQuirkClockOffset(t *testing.T) {
	before := time.Now()
	op, _, tok := quirkLogin(t, Options{Quirks: Quirks{ClockOffset: 2 * time.Minute}}, "alice")
	c := claimsOf(t, idTokenOf(t, tok))
	iat := time.Unix(int64(c["iat"].(float64)), 0)
	if ahead := iat.Sub(before); ahead < 2*time.Minute-time.Second || ahead > 2*time.Minute+30*time.Second {
		t.Errorf("iat is %v ahead of the machine's clock, want 2m", ahead)
	}
	if int64(c["exp"].(float64))-int64(c["iat"].(float64)) != 3600 || int64(c["auth_time"].(float64)) != int64(c["iat"].(float64)) {
		t.Errorf("exp, auth_time against iat: %v", c)
	}
	// SetNow keeps the offset.
	fixed := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	op.SetNow(func() time.Time { return fixed })
	f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
	if got := claimsOf(t, idTokenOf(t, f.login(t, "", "")))["iat"].(float64); int64(got) != fixed.Add(2*time.Minute).Unix() {
		t.Errorf("after SetNow, iat %v", got)
	}
}

func TestQuirkJWKSCacheControl(t *testing.T) {
	for _, cc := range []string{"", "no-store", "no-cache", "max-age=0", "max-age=60"} {
		op := startOP(t, Options{Keys: 1, Quirks: Quirks{JWKSCacheControl: cc}})
		var jwks map[string]any
		resp := getJSON(t, op.URL()+"/jwks", &jwks)
		want := cc
		if want == "" {
			want = "max-age=300"
		}
		if got := resp.Header.Get("Cache-Control"); got != want {
			t.Errorf("JWKSCacheControl %q: header %q", cc, got)
		}
	}
}

func TestQuirkAZP(t *testing.T) {
	t.Run("another client", func(t *testing.T) {
		op, _, tok := quirkLogin(t, Options{Quirks: Quirks{AZP: "other-client"}}, "alice")
		idt := verifyGoOIDC(t, op.Issuer(), idTokenOf(t, tok)) // go-oidc does not look at azp
		var c struct {
			AZP string `json:"azp"`
		}
		idt.Claims(&c)
		if c.AZP != "other-client" || !slices.Equal(idt.Audience, []string{"opkssh", "other-client"}) {
			t.Errorf("azp %q, aud %q", c.AZP, idt.Audience)
		}
	})
	t.Run("our client among several audiences", func(t *testing.T) {
		op, _, tok := quirkLogin(t, Options{Quirks: Quirks{AZP: "opkssh", ExtraAudiences: []string{"other-client"}}}, "alice")
		c := claimsOf(t, idTokenOf(t, tok))
		if c["azp"] != "opkssh" || !slices.Equal(c["aud"].([]any), []any{"opkssh", "other-client"}) {
			t.Errorf("azp %v, aud %v", c["azp"], c["aud"])
		}
		verifyGoOIDC(t, op.Issuer(), idTokenOf(t, tok))
	})
}

func TestQuirkNotBefore(t *testing.T) {
	op, _, tok := quirkLogin(t, Options{Quirks: Quirks{NotBefore: 10 * time.Minute}}, "alice")
	raw := idTokenOf(t, tok)
	c := claimsOf(t, raw)
	if nbf, iat := c["nbf"].(float64), c["iat"].(float64); nbf-iat != 600 {
		t.Fatalf("nbf %v, iat %v: want nbf 10 minutes after iat", nbf, iat)
	}
	// go-oidc allows 5 minutes of skew on nbf, not 10.
	p := newProvider(t, op)
	if _, err := p.Verifier(&oidc.Config{ClientID: "opkssh"}).Verify(t.Context(), raw); err == nil || !strings.Contains(err.Error(), "nbf") {
		t.Errorf("go-oidc accepted a token valid in 10 minutes: %v", err)
	}
	_, _, plain := quirkLogin(t, Options{Keys: 1, Users: []User{{Subject: "alice", Extra: map[string]any{"nbf": 1}}}}, "alice")
	if _, has := claimsOf(t, idTokenOf(t, plain))["nbf"]; has {
		t.Error("an Extra nbf claim got into the token of an OP without NotBefore")
	}
}

func TestQuirkSchemelessIss(t *testing.T) {
	op, _, tok := quirkLogin(t, Options{Quirks: Quirks{SchemelessIss: true}}, "alice")
	raw := idTokenOf(t, tok)
	if iss := claimsOf(t, raw)["iss"]; iss != strings.TrimPrefix(op.Issuer(), "http://") {
		t.Fatalf("iss %v, want the issuer %s without its scheme", iss, op.Issuer())
	}
	if code, d := discoveryAt(t, op.Issuer()+"/.well-known/openid-configuration"); code != 200 || d.Issuer != op.Issuer() {
		t.Fatalf("discovery: %d %q", code, d.Issuer)
	}
	p := newProvider(t, op)
	if _, err := p.Verifier(&oidc.Config{ClientID: "opkssh"}).Verify(t.Context(), raw); err == nil || !strings.Contains(err.Error(), "issued by a different provider") {
		t.Errorf("go-oidc accepted the scheme-less iss: %v", err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: "opkssh", SkipIssuerCheck: true}).Verify(t.Context(), raw); err != nil {
		t.Errorf("the signature does not verify: %v", err)
	}
}

func TestQuirkTenants(t *testing.T) {
	users := []User{
		{Subject: "alice", Email: "alice@contoso.com", EmailVerified: true},
		{Subject: "bob", Email: "bob@fabrikam.com", EmailVerified: true, Tenant: "tid-2"},
	}
	q := Quirks{Tenants: []Tenant{{ID: "tid-1", Domains: []string{"contoso.onmicrosoft.com"}}, {ID: "tid-2"}}}
	op := startOP(t, Options{Users: users, Quirks: q})
	base := op.URL()
	if op.Issuer() != base+"/{tenantid}/v2.0" || op.TenantIssuer("tid-1") != base+"/tid-1/v2.0" {
		t.Fatalf("Issuer %q, TenantIssuer %q", op.Issuer(), op.TenantIssuer("tid-1"))
	}
	for path, want := range map[string]string{
		"/tid-1/v2.0":                   base + "/tid-1/v2.0",
		"/tid-2/v2.0":                   base + "/tid-2/v2.0",
		"/contoso.onmicrosoft.com/v2.0": base + "/tid-1/v2.0",
		"/common/v2.0":                  base + "/{tenantid}/v2.0",
	} {
		code, d := discoveryAt(t, base+path+"/.well-known/openid-configuration")
		if code != 200 || d.Issuer != want || d.JWKSURI != base+"/jwks" {
			t.Errorf("%s: %d, issuer %q, want %q", path, code, d.Issuer, want)
		}
	}
	if code, _ := discoveryAt(t, base+"/.well-known/openid-configuration"); code != http.StatusNotFound {
		t.Errorf("root discovery of a multi-tenant OP: %d", code)
	}
	// The common document names a template, which go-oidc refuses as an issuer, as it should.
	if _, err := oidc.NewProvider(t.Context(), base+"/common/v2.0"); err == nil {
		t.Error("go-oidc accepted the common endpoint")
	}
	for _, tc := range []struct{ user, tid string }{{"alice", "tid-1"}, {"bob", "tid-2"}} {
		op.SetAutoApprove(tc.user)
		f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
		if err := Browse(t.Context(), f.authURL(), "", ""); err != nil {
			t.Fatal(err)
		}
		q := f.cb.last()
		if q.Get("iss") != op.TenantIssuer(tc.tid) {
			t.Errorf("%s: authorization response iss %q", tc.user, q.Get("iss"))
		}
		tok, err := f.cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatal(err)
		}
		idt := verifyGoOIDC(t, op.TenantIssuer(tc.tid), idTokenOf(t, tok))
		var c struct {
			TID string `json:"tid"`
		}
		idt.Claims(&c)
		if c.TID != tc.tid || idt.Issuer != op.TenantIssuer(tc.tid) {
			t.Errorf("%s: tid %q, iss %q", tc.user, c.TID, idt.Issuer)
		}
	}
	for name, opts := range map[string]Options{
		"unknown tenant":            {Users: []User{{Subject: "x", Tenant: "nope"}}, Quirks: q},
		"tenant without tenants":    {Users: []User{{Subject: "x", Tenant: "tid-1"}}},
		"issuer path with tenants":  {Quirks: Quirks{IssuerPath: "/x", Tenants: q.Tenants}},
		"reserved tenant ID":        {Quirks: Quirks{Tenants: []Tenant{{ID: "common"}}}},
		"domain used twice":         {Quirks: Quirks{Tenants: []Tenant{{ID: "a", Domains: []string{"d"}}, {ID: "b", Domains: []string{"d"}}}}},
		"tenant ID with a slash":    {Quirks: Quirks{Tenants: []Tenant{{ID: "a/b"}}}},
		"issuer path with a brace":  {Quirks: Quirks{IssuerPath: "/{x}"}},
		"issuer path not absolute":  {Quirks: Quirks{IssuerPath: "realms/x"}},
		"issuer path with a double": {Quirks: Quirks{IssuerPath: "//"}},
	} {
		if op, err := Start(opts); err == nil {
			op.Close()
			t.Errorf("%s: Start accepted %+v", name, opts.Quirks)
		}
	}
}

func TestQuirkDeviceDropsNonce(t *testing.T) {
	for _, drop := range []bool{false, true} {
		op := startOP(t, Options{Keys: 1, AutoApprove: "alice", Quirks: Quirks{DeviceDropsNonce: drop}})
		da := deviceAuth(t, op, "the-nonce")
		code, body := pollDevice(t, op, da["device_code"].(string))
		if code != 200 {
			t.Fatalf("poll: %d %v", code, body)
		}
		idt := verifyGoOIDC(t, op.Issuer(), body["id_token"].(string))
		if want := map[bool]string{false: "the-nonce", true: ""}[drop]; idt.Nonce != want {
			t.Errorf("DeviceDropsNonce %v: nonce %q, want %q", drop, idt.Nonce, want)
		}
		// The browser flow keeps it.
		f := newFlow(t, op, "opkssh", "", oauth2.AuthStyleInParams)
		if idt := verifyGoOIDC(t, op.Issuer(), idTokenOf(t, f.login(t, "", ""))); idt.Nonce != f.nonce {
			t.Errorf("DeviceDropsNonce %v: browser flow nonce %q", drop, idt.Nonce)
		}
	}
}

// TestQuirksZeroValue pins what the zero value promises: the OP of before the quirks.
func TestQuirksZeroValue(t *testing.T) {
	op, f, tok := quirkLogin(t, Options{}, "alice")
	if op.Issuer() != op.URL() || strings.HasSuffix(op.Issuer(), "/") {
		t.Errorf("Issuer %q, URL %q", op.Issuer(), op.URL())
	}
	raw := idTokenOf(t, tok)
	c := claimsOf(t, raw)
	for _, claim := range []string{"nbf", "tid"} {
		if _, has := c[claim]; has {
			t.Errorf("claim %s present", claim)
		}
	}
	if c["aud"] != "opkssh" || c["azp"] != "opkssh" || c["iss"] != op.Issuer() || kidOf(t, raw) == "" {
		t.Errorf("aud %v, azp %v, iss %v, kid %q", c["aud"], c["azp"], c["iss"], kidOf(t, raw))
	}
	checkLogin(t, op, f, tok)
	var jwks map[string][]map[string]any
	if resp := getJSON(t, op.URL()+"/jwks", &jwks); resp.Header.Get("Cache-Control") != "max-age=300" || len(jwks["keys"]) != 2 {
		t.Errorf("JWKS: Cache-Control %q, %d keys", resp.Header.Get("Cache-Control"), len(jwks["keys"]))
	}
}
