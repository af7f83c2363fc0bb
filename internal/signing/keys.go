package signing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// maxJWKSFile bounds a pinned key file.
const maxJWKSFile = 1 << 20

// PinnedKeys is a KeySource of keys read from JWKS files (archived keys of an OP), used for every
// provider: a token is accepted only if one of these keys signed it.
type PinnedKeys struct{ Set jwk.Set }

// Keys implements verifier.KeySource.
func (p PinnedKeys) Keys(context.Context, *policy.Provider, string) (jwk.Set, verifier.KeyInfo, error) {
	return p.Set, verifier.KeyInfo{Source: verifier.KeySourcePinned}, nil
}

// ReadJWKSFiles merges the keys of JWKS files (each a {"keys": [...]} document).
func ReadJWKSFiles(paths []string) (PinnedKeys, error) {
	set := jwk.NewSet()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return PinnedKeys{}, err
		}
		data, err := io.ReadAll(io.LimitReader(f, maxJWKSFile+1))
		f.Close()
		if err != nil {
			return PinnedKeys{}, fmt.Errorf("%s: %w", p, err)
		}
		if len(data) > maxJWKSFile {
			return PinnedKeys{}, fmt.Errorf("%s: larger than %d bytes", p, maxJWKSFile)
		}
		one, err := jwk.Parse(data)
		if err != nil {
			return PinnedKeys{}, fmt.Errorf("%s: not a JWKS document: %w", p, err)
		}
		for i := range one.Len() {
			k, _ := one.Key(i)
			if err := set.AddKey(k); err != nil {
				return PinnedKeys{}, fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return PinnedKeys{Set: set}, nil
}

// DefaultCacheDir is where a verifier of signatures keeps the OPs' keys: the server's verify cache
// when this process may use it (root, or the verify user), else the user's own cache directory.
func DefaultCacheDir() string {
	if f, err := os.Open(verifier.DefaultCacheDir); err == nil {
		_, err := f.Readdirnames(1)
		f.Close()
		if err == nil || errors.Is(err, io.EOF) {
			return verifier.DefaultCacheDir
		}
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir := filepath.Join(base, "opkssh", "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return dir
}
