// Package apiauth authenticates HTTP API requests with the caller's opkssh key: the client signs
// each request, the server checks the signature and the OIDC identity the embedded certificate's
// PK token proves, against a policy. No API keys or public keys are distributed: the identity
// travels with each request, vouched for by the caller's OpenID Provider.
//
// The client's Transport signs, under the fixed SSHSIG namespace Namespace, the canonical form
//
//	opkssh-api-v1 \n METHOD \n HOST \n PATH \n QUERY \n hex(SHA-256(body)) \n TIMESTAMP \n NONCE \n
//
// and sends the signature (which embeds the opkssh certificate) with the timestamp and nonce in
// the headers HeaderSignature, HeaderTimestamp and HeaderNonce. The server's Verifier recomputes
// the form from the request it received, so a request re-targeted to another method, host, path
// or query, or with another body, does not verify; it refuses timestamps outside Window of its
// clock, and a nonce it has seen from the same key within the window (a replay). The caller's
// verified identity is then in the request's context (IdentityFrom).
//
// What a request signature proves, and for how long the certificate's identity holds, is what
// docs/signing.md says of signatures; here the signature's time is the request's timestamp, which
// must fall in the certificate's validity and the provider's expiration.
package apiauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Namespace is the SSHSIG namespace of request signatures: a signature made for anything else
// (a file, a git commit) is never accepted as a request, nor the other way round.
const Namespace = "opkssh-api@opkssh.dev"

// Headers carrying the signature. The certificate travels inside the signature.
const (
	HeaderSignature = "Opkssh-Signature" // base64 of the binary SSHSIG blob
	HeaderTimestamp = "Opkssh-Timestamp" // Unix seconds
	HeaderNonce     = "Opkssh-Nonce"     // 32 hex digits, random per request
)

// canonical is the message a request's signature covers.
func canonical(method, host, path, rawQuery string, bodyDigest []byte, ts time.Time, nonce string) []byte {
	var b bytes.Buffer
	for _, s := range []string{"opkssh-api-v1", method, host, path, rawQuery, hex.EncodeToString(bodyDigest), strconv.FormatInt(ts.Unix(), 10), nonce} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func digest(body []byte) []byte {
	d := sha256.Sum256(body)
	return d[:]
}
