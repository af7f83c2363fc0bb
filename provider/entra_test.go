package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testTenantID = "b4e1c2d3-5f6a-4b7c-8d9e-0a1b2c3d4e5f"

// entraStub is a stand-in for login.microsoftonline.com: it serves the discovery document of
// contoso.onmicrosoft.com with the body and status the test sets, and counts requests.
type entraStub struct {
	*httptest.Server
	status int
	body   string // "%s" is replaced by the stub's URL
	hits   atomic.Int32
	header http.Header // of the last request
}

func newEntraStub(t *testing.T) *entraStub {
	s := &entraStub{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.header = r.Header.Clone()
		if r.URL.Path != "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration" {
			http.Error(w, `{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant 'x' not found."}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		w.Write([]byte(strings.ReplaceAll(s.body, "%s", s.URL)))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestEntraResolveTenantID(t *testing.T) {
	stub := newEntraStub(t)
	r := EntraResolver{Authority: stub.URL}
	for _, in := range []string{testTenantID, strings.ToUpper(testTenantID)} {
		got, err := r.Resolve(context.Background(), in)
		want := EntraTenant{ID: testTenantID, Issuer: stub.URL + "/" + testTenantID + "/v2.0"}
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if got, err := (EntraResolver{}).Resolve(context.Background(), testTenantID); err != nil || got.Issuer != "https://login.microsoftonline.com/"+testTenantID+"/v2.0" {
		t.Errorf("default authority: %+v, %v", got, err)
	}
	if n := stub.hits.Load(); n != 0 {
		t.Errorf("a tenant ID made %d requests, want none", n)
	}
}

func TestEntraResolveDomain(t *testing.T) {
	stub := newEntraStub(t)
	stub.body = `{"token_endpoint":"%s/x/oauth2/v2.0/token","issuer":"%s/` + testTenantID + `/v2.0","tenant_region_scope":"EU"}`
	got, err := EntraResolver{Authority: stub.URL + "/"}.Resolve(context.Background(), "contoso.onmicrosoft.com")
	want := EntraTenant{Domain: "contoso.onmicrosoft.com", ID: testTenantID, Issuer: stub.URL + "/" + testTenantID + "/v2.0"}
	if err != nil || got != want {
		t.Fatalf("Resolve = %+v, %v; want %+v", got, err, want)
	}
	if n := stub.hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if a := stub.header.Get("Accept"); a != "application/json" {
		t.Errorf("Accept: %q", a)
	}
}

func TestEntraResolveRefusesBadIssuers(t *testing.T) {
	stub := newEntraStub(t)
	r := EntraResolver{Authority: stub.URL}
	for _, iss := range []string{
		"%s/contoso.onmicrosoft.com/v2.0", // a domain, not an ID
		"%s/{tenantid}/v2.0",              // the multi-tenant template
		"%s/" + strings.ToUpper(testTenantID) + "/v2.0",
		"%s/" + testTenantID + "/v2.0/",
		"%s/" + testTenantID + "/v2.0x",
		"%s/" + testTenantID,
		"%s/" + testTenantID + "/x/v2.0",
		"%s//" + testTenantID + "/v2.0",
		"https://login.microsoftonline.com/" + testTenantID + "/v2.0", // another host than the authority
		"https://sts.windows.net/" + testTenantID + "/",
		"",
	} {
		stub.body = `{"issuer":"` + iss + `"}`
		_, err := r.Resolve(context.Background(), "contoso.onmicrosoft.com")
		if err == nil || !strings.Contains(err.Error(), `the discovery document of Microsoft tenant "contoso.onmicrosoft.com" names the issuer`) || !strings.Contains(err.Error(), "pass the directory (tenant) ID") {
			t.Errorf("issuer %q: %v", iss, err)
		}
	}
}

func TestEntraResolveHTTPErrors(t *testing.T) {
	stub := newEntraStub(t)
	r := EntraResolver{Authority: stub.URL}
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusBadRequest, `{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant 'contoso.onmicrosoft.com' not found.\r\nTrace ID: 1\r\nCorrelation ID: 2"}`,
			`answered HTTP 400: AADSTS90002: Tenant 'contoso.onmicrosoft.com' not found.; check the domain`},
		{http.StatusInternalServerError, "oops", "answered HTTP 500; check the domain"},
		{http.StatusBadRequest, `{"error_description":"bad\u001b[31m"}`, "answered HTTP 400: bad?[31m;"},
		{http.StatusOK, "<html>", "is not a discovery document"},
		{http.StatusOK, `{"jwks_uri":"x"}`, "has no issuer"},
		{http.StatusOK, `{"issuer":1}`, "is not a discovery document"},
		{http.StatusOK, `{"issuer":"` + strings.Repeat("x", maxEntraDiscovery) + `"}`, "is larger than 262144 bytes"},
	} {
		stub.status, stub.body = tc.status, tc.body
		_, err := r.Resolve(context.Background(), "contoso.onmicrosoft.com")
		if err == nil || !strings.Contains(err.Error(), `looking up Microsoft tenant "contoso.onmicrosoft.com": `) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HTTP %d %.40q: %v; want %q", tc.status, tc.body, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "Trace ID") {
			t.Errorf("the error keeps Entra's trace lines: %v", err)
		}
	}
	if _, err := r.Resolve(context.Background(), "fabrikam.example"); err == nil || !strings.Contains(err.Error(), "AADSTS90002") {
		t.Errorf("unknown tenant: %v", err)
	}
}

func TestEntraResolveRedirects(t *testing.T) {
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
		w.Write([]byte(`{"issuer":"x"}`))
	}))
	defer elsewhere.Close()
	target := elsewhere.URL
	mux := http.NewServeMux()
	mux.HandleFunc("/contoso.onmicrosoft.com/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"/doc", http.StatusFound)
	})
	var authority string
	mux.HandleFunc("/doc", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"issuer":"` + authority + "/" + testTenantID + `/v2.0"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	authority = srv.URL
	r := EntraResolver{Authority: srv.URL}

	_, err := r.Resolve(context.Background(), "contoso.onmicrosoft.com")
	if err == nil || !strings.Contains(err.Error(), "refusing a redirect to "+elsewhere.URL+"/doc, another host than") {
		t.Errorf("redirect elsewhere: %v", err)
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
	// Even a caller's client that would follow it does not.
	if _, err := (EntraResolver{Authority: srv.URL, HTTPClient: http.DefaultClient}).Resolve(context.Background(), "contoso.onmicrosoft.com"); err == nil || elsewhereHits.Load() != 0 {
		t.Errorf("caller's client: %v, %d requests elsewhere", err, elsewhereHits.Load())
	}

	target = srv.URL // the same host is fine
	if got, err := r.Resolve(context.Background(), "contoso.onmicrosoft.com"); err != nil || got.ID != testTenantID {
		t.Errorf("redirect on the same host: %+v, %v", got, err)
	}
}

func TestEntraResolveTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	_, err := EntraResolver{Authority: srv.URL, HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}}.Resolve(context.Background(), "contoso.onmicrosoft.com")
	if err == nil || !strings.Contains(err.Error(), "Timeout") || time.Since(start) > 5*time.Second {
		t.Errorf("after %v: %v", time.Since(start), err)
	}
}

func TestEntraResolveRefusesNamesBeforeAnyRequest(t *testing.T) {
	stub := newEntraStub(t)
	r := EntraResolver{Authority: stub.URL}
	for tenant, want := range map[string]string{
		"":                                "needs a tenant (--tenant)",
		"common":                          "multi-tenant alias",
		"Organizations":                   "multi-tenant alias",
		"consumers":                       "multi-tenant alias",
		"contoso":                         "must be a directory (tenant) ID",
		"a/b.com":                         "must be a directory (tenant) ID",
		"../x.com":                        "must be a directory (tenant) ID",
		"x.com/..":                        "must be a directory (tenant) ID",
		"x.com?a=b":                       "must be a directory (tenant) ID",
		"x.com#f":                         "must be a directory (tenant) ID",
		"x%2f.com":                        "must be a directory (tenant) ID",
		"-x.com":                          "must be a directory (tenant) ID",
		"x..com":                          "must be a directory (tenant) ID",
		"x.com.":                          "must be a directory (tenant) ID",
		"bücher.de":                       "must be a directory (tenant) ID",
		"user@x.com":                      "must be a directory (tenant) ID",
		strings.Repeat("a.", 127) + "com": "must be a directory (tenant) ID",
		testTenantID[:35]:                 "must be a directory (tenant) ID",
		testTenantID + "0":                "must be a directory (tenant) ID",
		strings.ReplaceAll(testTenantID, "-", "_"): "must be a directory (tenant) ID",
	} {
		if _, err := r.Resolve(context.Background(), tenant); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%q): %v; want %q", tenant, err, want)
		}
	}
	if n := stub.hits.Load(); n != 0 {
		t.Errorf("%d requests for names that are no tenant", n)
	}
}

func TestAddProviderResolvesDomain(t *testing.T) {
	stub := newEntraStub(t)
	stub.body = `{"issuer":"%s/` + testTenantID + `/v2.0"}`
	path := filepath.Join(t.TempDir(), "config.yaml")
	added, err := AddProvider(context.Background(), path, "work", Entry{Preset: "microsoft", Tenant: "contoso.onmicrosoft.com", ClientID: "abc"}, AddOptions{Entra: EntraResolver{Authority: stub.URL}})
	if err != nil {
		t.Fatal(err)
	}
	issuer := stub.URL + "/" + testTenantID + "/v2.0"
	if added.Tenant == nil || *added.Tenant != (EntraTenant{Domain: "contoso.onmicrosoft.com", ID: testTenantID, Issuer: issuer}) || added.Config.Issuer != issuer || !added.Default {
		t.Fatalf("added %+v (tenant %+v)", added, added.Tenant)
	}
	data, _ := os.ReadFile(path)
	// The stub is not the preset's authority, so its issuer is written out.
	want := "default: work\nproviders:\n  work:\n    preset: microsoft\n    tenant: " + testTenantID + " # contoso.onmicrosoft.com\n    issuer: " + issuer + "\n    client_id: abc\n"
	if string(data) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", data, want)
	}
	f, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.Provider("work"); err != nil || cfg.Issuer != issuer {
		t.Fatalf("work: %+v, %v", cfg, err)
	}
}
