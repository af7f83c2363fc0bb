// Package gqsig makes and checks GQ256 signatures over RS256 JWTs, in the format of OpenPubkey
// (header alg GQ256, kid holding the original protected header), so that a PK token can carry an
// OP-signed ID token without carrying the OP's RSA signature: the RSA signature s is the secret of
// a Guillou–Quisquater proof of knowledge (ISO/IEC 14888-2, GQ1), and what travels is the proof.
// Whoever sees the PK token can check the OP vouched for the claims but cannot present the ID
// token as a bearer token anywhere.
//
// Why our own code and not openpubkey's gq package: that package's signer keeps secrets in
// memguard buffers, and memguard runs at process start (it mlocks memory and panics where
// RLIMIT_MEMLOCK is small, disables core dumps, starts a rekeying goroutine). opkssh is one binary
// whose verify subcommand sshd starts on every login as an unprivileged user, so it must not link
// memguard. The scheme is small; the tests check this package against openpubkey's gq in both
// directions.
//
// The scheme, for an RSA public key (n, v) with v odd and at least 3:
//
//   - identity: the original "header.payload"; its public number G is the EMSA-PKCS1-v1_5
//     encoding of SHA-256(identity) at n's length — the value the OP's RSA signature s inverts,
//     s^v = G mod n;
//   - the private number Q = s^-1 mod n, so Q^v·G = 1 mod n;
//   - t = ceil(256 / floor(log2 v)) rounds (16 for v = 65537), each challenge R_i of vBytes bytes
//     where vBytes covers bitlen(v)-1 bits;
//   - sign: r_i random, W_i = r_i^v, R = SHAKE256(W_1..W_t ‖ message)[:t·vBytes],
//     S_i = r_i·Q^{R_i}; the signature is base64url(R ‖ S_1..S_t), each S_i n's length;
//   - verify: 0 < S_i < n, W*_i = S_i^v·G^{R_i}, accept iff SHAKE256(W* ‖ message) starts with R;
//   - message is "GQheader.payload", so the GQ protected header (and its cic or jkt) is signed.
package gqsig

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/bits"

	"filippo.io/bigmod"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"golang.org/x/crypto/sha3"
)

// Alg is the JWS algorithm name of a GQ256 signature.
const Alg = "GQ256"

// securityBits is the soundness the rounds add up to: GQ256.
const securityBits = 256

func init() {
	// jwx refuses to parse a JWS whose alg it does not know; registering the name lets the PK
	// token parser read GQ-signed tokens. It adds no way to verify with it: jws.Verify has no
	// GQ256 implementation, and verify only accepts a GQ signature through this package.
	jwa.RegisterSignatureAlgorithm(jwa.NewSignatureAlgorithm(Alg))
}

// params are the numbers both sides derive from the OP's RSA key.
type params struct {
	n      *big.Int
	v      *big.Int
	nBytes int // length of n in bytes
	vBytes int // length of each challenge R_i in bytes
	t      int // rounds
}

// Bounds on the OP key: RSA moduli as OPs use them, and exponents that give whole rounds.
const (
	minModulusBits = 2048
	maxModulusBits = 8192
)

func newParams(pub *rsa.PublicKey) (*params, error) {
	if pub == nil || pub.N == nil {
		return nil, errors.New("no RSA key")
	}
	if bl := pub.N.BitLen(); bl < minModulusBits || bl > maxModulusBits {
		return nil, fmt.Errorf("RSA modulus of %d bits is outside %d-%d", bl, minModulusBits, maxModulusBits)
	}
	if pub.N.Bit(0) == 0 {
		return nil, errors.New("RSA modulus is even")
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Errorf("RSA exponent %d is not odd and at least 3", pub.E)
	}
	perRound := bits.Len(uint(pub.E)) - 1
	return &params{
		n:      pub.N,
		v:      big.NewInt(int64(pub.E)),
		nBytes: (pub.N.BitLen() + 7) / 8,
		vBytes: (perRound + 7) / 8,
		t:      (securityBits + perRound - 1) / perRound,
	}, nil
}

// publicNumber is G: the PKCS #1 v1.5 encoding of SHA-256(identity), as RS256 signs it.
func (p *params) publicNumber(identity []byte) *big.Int {
	digestInfo := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	sum := sha256.Sum256(identity)
	em := make([]byte, p.nBytes)
	em[1] = 1
	pad := p.nBytes - len(digestInfo) - len(sum) - 1
	for i := 2; i < pad; i++ {
		em[i] = 0xff
	}
	copy(em[pad+1:], digestInfo)
	copy(em[pad+1+len(digestInfo):], sum[:])
	return new(big.Int).SetBytes(em)
}

// challenge is the first t·vBytes bytes of SHAKE256(W ‖ message).
func (p *params) challenge(w, message []byte) []byte {
	h := sha3.NewShake256()
	h.Write(w)
	h.Write(message)
	out := make([]byte, p.t*p.vBytes)
	h.Read(out)
	return out
}

// verify checks proof over message for the identity.
func (p *params) verify(proof, identity, message []byte) bool {
	rLen, sLen := p.t*p.vBytes, p.t*p.nBytes
	if len(proof) != rLen+sLen {
		return false
	}
	R, S := proof[:rLen], proof[rLen:]
	// G^(2^k) for every bit of a challenge, computed once: each G^{R_i} is then a product of the
	// powers its bits select, instead of an exponentiation per round.
	pow := make([]*big.Int, 8*p.vBytes)
	pow[0] = p.publicNumber(identity)
	for k := 1; k < len(pow); k++ {
		pow[k] = new(big.Int).Mul(pow[k-1], pow[k-1])
		pow[k].Mod(pow[k], p.n)
	}
	w := make([]byte, 0, sLen)
	l := new(big.Int)
	for i := range p.t {
		s := new(big.Int).SetBytes(S[i*p.nBytes : (i+1)*p.nBytes])
		if s.Sign() == 0 || s.Cmp(p.n) >= 0 {
			return false
		}
		l.Exp(s, p.v, p.n)
		ri := R[i*p.vBytes : (i+1)*p.vBytes]
		for k := range pow {
			if ri[len(ri)-1-k/8]>>(k%8)&1 == 1 {
				l.Mul(l, pow[k]).Mod(l, p.n)
			}
		}
		w = append(w, l.FillBytes(make([]byte, p.nBytes))...)
	}
	return bytes.Equal(R, p.challenge(w, message))
}

// sign makes a proof over message with the RSA signature rsaSig (big-endian, n's length) as the
// secret, in constant time in the secret except for a blinded inversion.
func (p *params) sign(rsaSig, message []byte) ([]byte, error) {
	n, err := bigmod.NewModulus(p.n.Bytes())
	if err != nil {
		return nil, err
	}
	q, err := inverseBlinded(rsaSig, n, p.n)
	if err != nil {
		return nil, err
	}
	v := p.v.Bytes()
	rs := make([]*bigmod.Nat, p.t)
	w := make([]byte, 0, p.t*p.nBytes)
	for i := range rs {
		if rs[i], err = randomNat(n, p.n); err != nil {
			return nil, err
		}
		w = append(w, bigmod.NewNat().Exp(rs[i], v, n).Bytes(n)...)
	}
	R := p.challenge(w, message)
	proof := append([]byte{}, R...)
	for i, ri := range rs {
		s := bigmod.NewNat().Exp(q, R[i*p.vBytes:(i+1)*p.vBytes], n)
		s.Mul(ri, n)
		proof = append(proof, s.Bytes(n)...)
	}
	return proof, nil
}

// inverseBlinded returns x^-1 mod n: x is multiplied by a random b first, so the variable-time
// inversion only sees x·b, and the result is multiplied by b again.
func inverseBlinded(x []byte, n *bigmod.Modulus, nInt *big.Int) (*bigmod.Nat, error) {
	xn, err := bigmod.NewNat().SetBytes(x, n)
	if err != nil {
		return nil, fmt.Errorf("RSA signature is not below the modulus: %w", err)
	}
	for range 8 {
		b, err := randomNat(n, nInt)
		if err != nil {
			return nil, err
		}
		xb := bigmod.NewNat().ExpandFor(n)
		xb.Mod(xn, n)
		xb.Mul(b, n)
		inv, ok := bigmod.NewNat().InverseVarTime(xb, n)
		if !ok {
			continue
		}
		return inv.Mul(b, n), nil
	}
	return nil, errors.New("RSA signature has no inverse modulo n")
}

func randomNat(n *bigmod.Modulus, nInt *big.Int) (*bigmod.Nat, error) {
	r, err := rand.Int(rand.Reader, nInt)
	if err != nil {
		return nil, err
	}
	return bigmod.NewNat().SetBytes(r.FillBytes(make([]byte, (nInt.BitLen()+7)/8)), n)
}

var b64 = base64.RawURLEncoding

// SignJWT replaces the RS256 signature of jwt, which must verify under pub, with a GQ256
// signature. extra are further protected header parameters (e.g. "cic" for a GQ-bound commitment,
// "jkt" for the OP key's thumbprint); alg, typ and kid are set here and may not be among them.
func SignJWT(pub *rsa.PublicKey, jwt []byte, extra map[string]string) ([]byte, error) {
	p, err := newParams(pub)
	if err != nil {
		return nil, err
	}
	msg, err := jws.Parse(jwt)
	if err != nil {
		return nil, fmt.Errorf("parsing the ID token: %w", err)
	}
	if len(msg.Signatures()) != 1 {
		return nil, errors.New("the ID token must carry one signature")
	}
	if alg, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm(); alg != jwa.RS256() {
		return nil, fmt.Errorf("GQ256 needs an RS256-signed ID token, this one is %v", alg)
	}
	if _, err := jws.Verify(jwt, jws.WithKey(jwa.RS256(), pub)); err != nil {
		return nil, fmt.Errorf("the ID token does not verify with the OP's key: %w", err)
	}
	origHeader, payload, sig, err := jws.SplitCompact(jwt)
	if err != nil {
		return nil, err
	}
	hdr := jws.NewHeaders()
	for k, val := range extra {
		switch k {
		case jws.AlgorithmKey, jws.TypeKey, jws.KeyIDKey:
			return nil, fmt.Errorf("header %q is set by the GQ signer", k)
		}
		if err := hdr.Set(k, val); err != nil {
			return nil, err
		}
	}
	if err := hdr.Set(jws.AlgorithmKey, jwa.NewSignatureAlgorithm(Alg)); err != nil {
		return nil, err
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return nil, err
	}
	if err := hdr.Set(jws.KeyIDKey, string(origHeader)); err != nil {
		return nil, err
	}
	hdrJSON, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	gqHeader := []byte(b64.EncodeToString(hdrJSON))
	rawSig, err := b64.DecodeString(string(sig))
	if err != nil {
		return nil, fmt.Errorf("ID token signature: %w", err)
	}
	proof, err := p.sign(rawSig, join(gqHeader, payload))
	if err != nil {
		return nil, err
	}
	return join(gqHeader, payload, []byte(b64.EncodeToString(proof))), nil
}

// Token is a parsed GQ256-signed JWT. Nothing in it is trusted until Verify returns nil.
type Token struct {
	// Header is the GQ protected header's JSON; Original is the OP's original protected header's
	// JSON (from the kid), whose kid names the OP key.
	Header   map[string]any
	Original map[string]any
	gqHeader []byte // base64url, as signed
	origB64  []byte // base64url, as the OP signed it
	payload  []byte // base64url
	proof    []byte // decoded
}

// maxTokenSize bounds the input; a GQ token over a large ID token is under 16 KiB.
const maxTokenSize = 64 << 10

// Parse splits a GQ256 JWT and decodes its headers. It checks the shape only: alg GQ256, the kid
// an encoded RS256 header, and a decodable proof. It never panics.
func Parse(token []byte) (*Token, error) {
	if len(token) > maxTokenSize {
		return nil, fmt.Errorf("GQ token of %d bytes is too large", len(token))
	}
	parts := bytes.Split(token, []byte("."))
	if len(parts) != 3 {
		return nil, errors.New("GQ token is not header.payload.signature")
	}
	t := &Token{gqHeader: parts[0], payload: parts[1]}
	if err := decodeJSON(parts[0], &t.Header); err != nil {
		return nil, fmt.Errorf("GQ header: %w", err)
	}
	if alg, _ := t.Header["alg"].(string); alg != Alg {
		return nil, fmt.Errorf("token alg is %q, not %s", clip(alg), Alg)
	}
	kid, ok := t.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("GQ header has no kid carrying the OP's original header")
	}
	t.origB64 = []byte(kid)
	if err := decodeJSON(t.origB64, &t.Original); err != nil {
		return nil, fmt.Errorf("the OP's original header (GQ kid): %w", err)
	}
	if alg, _ := t.Original["alg"].(string); alg != "RS256" {
		return nil, fmt.Errorf("the OP's original algorithm is %q; GQ256 is defined over RS256", clip(alg))
	}
	proof, err := b64.DecodeString(string(parts[2]))
	if err != nil {
		return nil, fmt.Errorf("GQ signature: %w", err)
	}
	t.proof = proof
	if _, err := b64.DecodeString(string(parts[1])); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return t, nil
}

// OriginalKeyID is the kid of the OP's original header, "" if none: the OP key to verify with.
func (t *Token) OriginalKeyID() string {
	kid, _ := t.Original["kid"].(string)
	return kid
}

// HeaderString returns a string parameter of the GQ protected header (e.g. "cic"), "" if absent.
func (t *Token) HeaderString(name string) string {
	s, _ := t.Header[name].(string)
	return s
}

// Payload returns the decoded payload.
func (t *Token) Payload() []byte {
	p, _ := b64.DecodeString(string(t.payload))
	return p
}

// Verify checks the GQ256 proof with the OP's RSA key: the OP signed the original header and
// this payload, and the GQ header is covered by the proof.
func (t *Token) Verify(pub *rsa.PublicKey) error {
	p, err := newParams(pub)
	if err != nil {
		return fmt.Errorf("OP key: %w", err)
	}
	if !p.verify(t.proof, join(t.origB64, t.payload), join(t.gqHeader, t.payload)) {
		return errors.New("GQ256 signature does not verify with the OP's key")
	}
	return nil
}

func decodeJSON(seg []byte, v any) error {
	raw, err := b64.DecodeString(string(seg))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, []byte(".")) }

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
