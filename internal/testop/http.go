package testop

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// routes builds the OP's handler. The method-qualified patterns make the mux
// answer other methods with 405 and an Allow header.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	for path, suffix := range discoveryIssuers(s.quirks) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { s.handleDiscovery(w, s.base+suffix) })
	}
	mux.HandleFunc("GET /jwks", s.handleJWKS)
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("POST /device_authorization", s.handleDeviceAuthorization)
	mux.HandleFunc("GET /device", s.handleDevicePage)
	mux.HandleFunc("POST /device", s.handleDevicePage)
	mux.HandleFunc("GET /userinfo", s.handleUserinfo)
	mux.HandleFunc("POST /userinfo", s.handleUserinfo)
	s.ciRoutes(mux)
	return s.countAndLog(mux)
}

// countAndLog counts requests per path for Requests, logs them to Logf
// and tracks running handlers for Close.
func (s *Server) countAndLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "testop: closed", http.StatusServiceUnavailable)
			return
		}
		s.requests[r.URL.Path]++
		s.inflight++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if s.inflight--; s.inflight == 0 {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
		}()
		if s.logf == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.logf("testop: %s %s %d %v", r.Method, r.URL.Path, sw.status, time.Since(start).Round(time.Microsecond))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// discovery is the OpenID Provider Metadata (OpenID Connect Discovery 1.0
// section 3), in the order a human reads it.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"` // RFC 8628
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	// RFC 9207: authorization responses carry an iss parameter.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// handleDiscovery serves the discovery document naming issuer; the endpoints are the same for
// every issuer the OP serves.
func (s *Server) handleDiscovery(w http.ResponseWriter, issuer string) {
	d := discovery{
		Issuer:                            issuer,
		AuthorizationEndpoint:             s.base + "/authorize",
		TokenEndpoint:                     s.base + "/token",
		DeviceAuthorizationEndpoint:       s.base + "/device_authorization",
		UserinfoEndpoint:                  s.base + "/userinfo",
		JWKSURI:                           s.base + "/jwks",
		ResponseTypesSupported:            []string{"code"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{s.alg.String()},
		ScopesSupported:                   []string{"openid", "email", "profile", "groups", ScopeOfflineAccess},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		GrantTypesSupported:               []string{"authorization_code", GrantTypeRefreshToken, GrantTypeDeviceCode},
		ClaimsSupported: []string{
			"iss", "sub", "aud", "azp", "iat", "exp", "nbf", "auth_time", "nonce", "at_hash", "tid",
			"email", "email_verified", "name", "groups", "amr",
		},
		AuthorizationResponseIssParameterSupported: true,
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	body, err := s.jwksJSON()
	if err != nil {
		http.Error(w, "testop: encoding JWKS: "+err.Error(), http.StatusInternalServerError)
		return
	}
	cc := s.quirks.JWKSCacheControl
	if cc == "" {
		cc = "max-age=300"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", cc)
	w.Write(body)
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>testop</title></head>
<body>
<h1>testop: an OpenID Provider for tests</h1>
<p>Issuer: <code>{{.Issuer}}</code></p>
<p>Configuration: <a href="{{.Discovery}}">{{.Discovery}}</a></p>
<p>Never use this provider in production.</p>
</body></html>
`))

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	discovery := strings.TrimSuffix(s.issuer, "/") + wellKnown
	if len(s.quirks.Tenants) > 0 {
		discovery = s.base + "/common/v2.0" + wellKnown
	}
	indexPage.Execute(w, map[string]string{"Issuer": s.issuer, "Discovery": discovery})
}

// writeJSON writes v as a JSON response. The values written by this package
// always encode.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "testop: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
