package signing

import (
	"context"
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

// DefaultKeys is where a verifier of signatures gets the OPs' keys: the server's verify cache
// (/var/cache/opkssh, read only, when this process may read it: root or the verify user), which
// may still hold keys the OP has since rotated out, and otherwise a cache of its own in cacheDir
// (DefaultCacheDir when empty; memory only when that is unusable) that fetches from the OP.
func DefaultKeys(cacheDir string) verifier.KeySource {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	return ServerCacheFirst{Dir: verifier.DefaultCacheDir, Fallback: &verifier.Cache{Dir: cacheDir}}
}

// ServerCacheFirst is a KeySource that looks for the key a token names in the entries of a verify
// cache directory, read only, and asks Fallback when the directory is unreadable, writable by
// group or others, or has no entry with that key.
type ServerCacheFirst struct {
	Dir      string
	Fallback verifier.KeySource
}

// Keys implements verifier.KeySource.
func (s ServerCacheFirst) Keys(ctx context.Context, p *policy.Provider, kid string) (jwk.Set, verifier.KeyInfo, error) {
	if fi, err := os.Stat(s.Dir); kid != "" && err == nil && fi.IsDir() && fi.Mode().Perm()&0o022 == 0 {
		entries, _ := verifier.ReadCacheDir(s.Dir)
		for _, e := range entries {
			if e.Issuer != p.Issuer || len(e.JWKS) == 0 {
				continue
			}
			set, err := jwk.Parse(e.JWKS)
			if err != nil {
				continue
			}
			if _, ok := set.LookupKeyID(kid); ok {
				return set, verifier.KeyInfo{Source: verifier.KeySourceCache, FetchedAt: e.FetchedAt, Note: "keys from " + s.Dir}, nil
			}
		}
	}
	return s.Fallback.Keys(ctx, p, kid)
}

// DefaultCacheDir is the user's own cache of the OPs' keys, ~/.cache/opkssh/keys (created 0700),
// or "" (memory only) when there is no such directory.
func DefaultCacheDir() string {
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
