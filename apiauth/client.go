package apiauth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opkssh-team/opkssh/internal/signing"
	"github.com/opkssh-team/opkssh/internal/sshsig"
)

// Transport is an http.RoundTripper that signs each request with an opkssh key.
type Transport struct {
	Signer ssh.Signer       // the opkssh private key
	Cert   *ssh.Certificate // its opkssh certificate, embedded in each signature
	Base   http.RoundTripper
	Now    func() time.Time // time.Now if nil
	// MaxBody bounds the request bodies the transport reads to sign; DefaultMaxBody if zero.
	MaxBody int64
}

// DefaultMaxBody bounds signed request bodies (the client reads the body to hash it, the server
// to check the hash).
const DefaultMaxBody = 10 << 20

// LoadKey reads an opkssh private key and the certificate beside it (KEY-cert.pub), valid now.
func LoadKey(keyPath string) (ssh.Signer, *ssh.Certificate, error) {
	k, err := signing.LoadKey(keyPath, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return k.Signer, k.Cert, nil
}

// RoundTrip signs a copy of req and sends it with Base.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Signer == nil || t.Cert == nil {
		return nil, errors.New("apiauth: Transport needs Signer and Cert")
	}
	body, err := readBody(req, t.maxBody())
	if err != nil {
		return nil, err
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	ts := now()
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, err
	}
	nonce := hex.EncodeToString(n[:])
	msg := canonical(req.Method, req.URL.Host, req.URL.EscapedPath(), req.URL.RawQuery, digest(body), ts, nonce)
	sig, err := sshsig.Sign(rand.Reader, t.Signer, t.Cert, Namespace, bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("apiauth: signing: %w", err)
	}
	out := req.Clone(req.Context())
	if out.Host != "" && out.Host != req.URL.Host {
		return nil, fmt.Errorf("apiauth: request Host %q differs from its URL's %q; the signature covers the URL's", out.Host, req.URL.Host)
	}
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig.Marshal()))
	out.Header.Set(HeaderTimestamp, fmt.Sprint(ts.Unix()))
	out.Header.Set(HeaderNonce, nonce)
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(out)
}

func (t *Transport) maxBody() int64 {
	if t.MaxBody > 0 {
		return t.MaxBody
	}
	return DefaultMaxBody
}

func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("apiauth: request body exceeds %d bytes", limit)
	}
	return body, nil
}
