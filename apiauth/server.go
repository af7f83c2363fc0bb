package apiauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opkssh-team/opkssh/internal/signing"
	"github.com/opkssh-team/opkssh/internal/sshsig"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Defaults of a Verifier.
const (
	DefaultWindow    = 2 * time.Minute
	DefaultMaxNonces = 1 << 20
)

// Identity is the caller of a verified request.
type Identity struct {
	Provider    string `json:"provider"`
	Issuer      string `json:"issuer"`
	Subject     string `json:"sub"`
	Email       string `json:"email,omitempty"`
	Fingerprint string `json:"fingerprint"` // of the caller's key
}

// Verifier checks signed requests. Its zero value is not usable: set Policy.
type Verifier struct {
	// Policy names the trusted providers and who is accepted: a signers entry for Namespace (or
	// without namespaces) or, with Principal, a rule letting the identity log in as Principal.
	Policy    *policy.Policy
	Principal string
	Keys      verifier.KeySource // the OPs' keys; an in-memory cache if nil
	Window    time.Duration      // how far a request's timestamp may be from now; DefaultWindow if zero
	Now       func() time.Time
	MaxBody   int64 // DefaultMaxBody if zero
	MaxNonces int   // DefaultMaxNonces if zero; when full, requests are refused until entries age
	Log       *slog.Logger

	once   sync.Once
	mu     sync.Mutex
	nonces map[string]time.Time // fingerprint+nonce → when it may be forgotten
	keys   verifier.KeySource
}

// Error is a refused request: Status is 401 (not authenticated), 403 (authenticated, not
// accepted) or 503 (replay cache full).
type Error struct {
	Status int
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func refuse(status int, reason, format string, args ...any) *Error {
	return &Error{Status: status, Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Reason codes of refused requests, besides those of signing.Verify.
const (
	ReasonUnsigned  = "unsigned"
	ReasonTimestamp = "timestamp_outside_window"
	ReasonReplay    = "replayed_nonce"
	ReasonBody      = "body_unreadable"
	ReasonBusy      = "replay_cache_full"
)

type ctxKey struct{}

// IdentityFrom returns the verified caller of a request passed by Middleware.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok
}

// Middleware verifies each request before next sees it, refusing it with 401/403 and a one-line
// reason otherwise. next finds the caller with IdentityFrom and the body as it was signed.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Verify(r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = refuse(http.StatusUnauthorized, verifier.ReasonTokenInvalid, "%v", err)
			}
			if v.Log != nil {
				v.Log.Info("apiauth refused", "reason", e.Reason, "detail", e.Error(), "method", r.Method, "path", r.URL.Path)
			}
			if e.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Opkssh-Signature")
			}
			http.Error(w, e.Reason+": "+e.Error(), e.Status)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// Verify checks r's signature, timestamp, nonce and signer, and replaces r.Body with the bytes
// it read. The host signed is r.Host: behind a proxy that rewrites it, pass the original.
func (v *Verifier) Verify(r *http.Request) (*Identity, error) {
	v.once.Do(v.init)
	sigB64, tsText, nonce := r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce)
	if sigB64 == "" || tsText == "" || nonce == "" {
		return nil, refuse(http.StatusUnauthorized, ReasonUnsigned, "the request is not signed (headers %s, %s, %s)", HeaderSignature, HeaderTimestamp, HeaderNonce)
	}
	if len(nonce) != 32 {
		return nil, refuse(http.StatusUnauthorized, ReasonUnsigned, "the nonce must be 32 hex digits")
	}
	secs, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, ReasonTimestamp, "timestamp %q is not Unix seconds", clip(tsText))
	}
	ts, now := time.Unix(secs, 0), v.now()
	if d := now.Sub(ts); d > v.window() || d < -v.window() {
		return nil, refuse(http.StatusUnauthorized, ReasonTimestamp, "timestamp %s is more than %s from the server's time %s", ts.UTC().Format(time.RFC3339), v.window(), now.UTC().Format(time.RFC3339))
	}
	blob, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(blob) > sshsig.MaxBlob {
		return nil, refuse(http.StatusUnauthorized, signing.ReasonMalformed, "the signature header is not base64 of an SSH signature")
	}
	body, err := readBody(r, v.maxBody())
	if err != nil {
		return nil, refuse(http.StatusRequestEntityTooLarge, ReasonBody, "%v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	msg := canonical(r.Method, r.Host, r.URL.EscapedPath(), r.URL.RawQuery, digest(body), ts, nonce)
	trust := signing.Trust{Policy: v.Policy, RequireSigner: true, Principal: v.Principal, Keys: v.keys}
	res, err := signing.Verify(r.Context(), sshsig.Armor(blob), bytes.NewReader(msg), Namespace, ts, trust)
	if err != nil {
		status := http.StatusUnauthorized
		if signing.ReasonOf(err) == signing.ReasonNotSigner {
			status = http.StatusForbidden
		}
		return nil, &Error{Status: status, Reason: signing.ReasonOf(err), Err: err}
	}
	if err := v.remember(res.Fingerprint+" "+nonce, now); err != nil {
		return nil, err
	}
	return &Identity{Provider: res.Provider, Issuer: res.Issuer, Subject: res.Subject, Email: res.Email, Fingerprint: res.Fingerprint}, nil
}

// remember records a nonce until it can no longer pass the timestamp check, refusing one seen.
// Only requests with a valid signature get here, so only accepted signers can fill the cache.
func (v *Verifier) remember(key string, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if until, seen := v.nonces[key]; seen && now.Before(until) {
		return refuse(http.StatusUnauthorized, ReasonReplay, "this request (nonce) was already received: a replay")
	}
	if len(v.nonces) >= v.maxNonces() {
		for k, until := range v.nonces {
			if !now.Before(until) {
				delete(v.nonces, k)
			}
		}
		if len(v.nonces) >= v.maxNonces() {
			return refuse(http.StatusServiceUnavailable, ReasonBusy, "too many requests in the replay window; retry later")
		}
	}
	// A timestamp passes for window on either side of now, so 2*window from now covers it.
	v.nonces[key] = now.Add(2 * v.window())
	return nil
}

func (v *Verifier) init() {
	v.nonces = map[string]time.Time{}
	v.keys = v.Keys
	if v.keys == nil {
		v.keys = &verifier.Cache{}
	}
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) window() time.Duration {
	if v.Window > 0 {
		return v.Window
	}
	return DefaultWindow
}

func (v *Verifier) maxBody() int64 {
	if v.MaxBody > 0 {
		return v.MaxBody
	}
	return DefaultMaxBody
}

func (v *Verifier) maxNonces() int {
	if v.MaxNonces > 0 {
		return v.MaxNonces
	}
	return DefaultMaxNonces
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
