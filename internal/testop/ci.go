package testop

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"
)

// The test OP can also play a CI platform's workload identity issuer:
//
//   - GitHub Actions: a job holds a request token (ACTIONS_ID_TOKEN_REQUEST_TOKEN) and asks
//     ActionsTokenURL (ACTIONS_ID_TOKEN_REQUEST_URL) with "Authorization: Bearer <request token>"
//     and an audience parameter of its choosing; the answer is {"count": 1, "value": "<ID token>"}
//     with aud = that audience and the job's claims (repository, repository_owner_id, ref, ...).
//   - Forgejo Actions: the same, on an OP started with Quirks.IssuerPath "/api/actions" (a Forgejo
//     instance's Actions issuer); its token URL is under /api/actions/_apis/pipelines/workflows/.
//   - GitLab CI: jobs get pre-issued tokens whose aud the pipeline fixed in advance;
//     IssueCIToken mints one for the test to put into the job's environment.
//
// Tokens are signed like ID tokens (RS256 by default, which GQ signing needs) and live
// CITokenLifetime (5 minutes, like GitHub's) unless the job says otherwise.

// CITokenLifetime is how long a CI job's ID token lives unless CIJob.Lifetime says otherwise.
const CITokenLifetime = 5 * time.Minute

// CIJob is a running job of the emulated platform.
type CIJob struct {
	// RequestToken authenticates the job's token requests.
	RequestToken string
	// Claims are the job's claims (repository, repository_owner_id, ref, environment, ...);
	// iss, aud, iat, nbf and exp are set by the OP, and sub defaults to GitHub's
	// "repo:OWNER/REPO:ref:REF".
	Claims   map[string]any
	Lifetime time.Duration
}

// ciJobs are the jobs by request token.
type ciJobs map[string]CIJob

// AddCIJob registers a job; a job with the same request token is replaced.
func (s *Server) AddCIJob(j CIJob) {
	j.Claims = maps.Clone(j.Claims)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ci == nil {
		s.ci = ciJobs{}
	}
	s.ci[j.RequestToken] = j
}

const (
	githubTokenPath  = "/_apis/actions/idtoken"
	forgejoTokenPath = "/api/actions/_apis/pipelines/workflows/1/idtoken"
)

// ActionsTokenURL is the job's ACTIONS_ID_TOKEN_REQUEST_URL: GitHub's form, or Forgejo's when the
// OP's issuer ends in /api/actions.
func (s *Server) ActionsTokenURL() string {
	if strings.HasSuffix(strings.TrimSuffix(s.issuer, "/"), "/api/actions") {
		return s.base + forgejoTokenPath + "?api-version=2.0"
	}
	return s.base + githubTokenPath + "?api-version=2.0"
}

func (s *Server) ciRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+githubTokenPath, s.handleActionsToken)
	mux.HandleFunc("GET /api/actions/_apis/pipelines/workflows/{run}/idtoken", s.handleActionsToken)
}

func (s *Server) handleActionsToken(w http.ResponseWriter, r *http.Request) {
	bearer, ok := bearerToken(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "no bearer request token"})
		return
	}
	s.mu.Lock()
	job, ok := s.ci[bearer]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "unknown request token"})
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "audience is required"})
		return
	}
	tok, err := s.signCIToken(job.Claims, aud, job.Lifetime)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(tok), "value": tok})
}

// IssueCIToken mints a pre-issued job token (GitLab's id_tokens) with the given aud and claims,
// living CITokenLifetime.
func (s *Server) IssueCIToken(claims map[string]any, aud string) (string, error) {
	return s.signCIToken(claims, aud, 0)
}

func (s *Server) signCIToken(claims map[string]any, aud string, lifetime time.Duration) (string, error) {
	if lifetime == 0 {
		lifetime = CITokenLifetime
	}
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	if _, ok := c["sub"]; !ok {
		c["sub"] = fmt.Sprintf("repo:%v:ref:%v", c["repository"], c["ref"])
	}
	c["iss"], c["aud"] = s.issuer, aud
	c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(lifetime).Unix()
	c["jti"] = randomToken()
	return s.SignIDToken(c)
}
