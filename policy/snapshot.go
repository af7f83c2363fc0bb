package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opkssh-team/opkssh/internal/filelock"
	"github.com/opkssh-team/opkssh/internal/fileowner"
)

// LoadForPrincipal returns what a decision about principal needs from the policy: every provider,
// the deny list, and the rules that list principal. It gives the same decisions as Load for that
// principal, but keeps a compiled snapshot of the policy in cacheDir so that a policy of 100,000
// rules is not parsed on every login.
//
// The snapshot is keyed by the identity of every source file (path, size, modification and change
// times, inode), which is read with the same owner and mode checks as Load on every call; any edit,
// added or removed drop-in gives a new key, and the next call loads the YAML again and writes a
// new snapshot. Rules are stored in 256 shards by a hash of the principal, so a lookup reads two
// small files. The snapshot is only as trustworthy as cacheDir, which must be owned by the caller
// or root and not writable by group or others — the same directory that holds the OPs' keys, which
// is already trusted that much. With cacheDir "" (or unusable) this is Load. A snapshot is built by
// one process at a time, under a lock file in cacheDir; the others wait for it (see awaitBuild).
func LoadForPrincipal(opts LoadOptions, cacheDir, principal string) (*Policy, error) {
	trusted := opts.TrustedUIDs
	if len(trusted) == 0 {
		trusted = []int{0}
	}
	key, err := sourceKey(opts, trusted)
	if err != nil || cacheDir == "" || checkSnapshotDir(cacheDir) != nil {
		return Load(opts)
	}
	dir := filepath.Join(cacheDir, "policy-"+key)
	if p, err := readSnapshot(dir, principal); err == nil {
		return p, nil
	}
	// After an edit every login misses the snapshot at the same moment. One builds it while the
	// others wait for it, rather than each parsing a large policy at once: 20 verifies of a
	// 100,000-rule policy took 50 s each that way on the 2-core machine.
	if unlock := awaitBuild(cacheDir, opts.SnapshotBuildWait); unlock != nil {
		defer unlock()
		if p, err := readSnapshot(dir, principal); err == nil {
			return p, nil // built while this one waited
		}
	}
	if opts.parsed != nil {
		opts.parsed()
	}
	p, err := Load(opts)
	if err != nil {
		return nil, err
	}
	writeSnapshot(cacheDir, dir, p) // best effort: the next call loads the YAML again
	return p, nil
}

// DefaultSnapshotBuildWait is LoadOptions.SnapshotBuildWait when it is 0.
const DefaultSnapshotBuildWait = 10 * time.Second

// awaitBuild takes the snapshot build lock of cacheDir, waiting up to wait. It returns
// nil, and the caller goes on without the lock, if the wait ran out or locks do not work here.
// The lock file's name does not match the snapshot directories', which writeSnapshot prunes.
func awaitBuild(cacheDir string, wait time.Duration) (unlock func()) {
	if wait <= 0 {
		wait = DefaultSnapshotBuildWait
	}
	path := filepath.Join(cacheDir, ".policy-build.lock")
	deadline := time.Now().Add(wait)
	for {
		unlock, ok, err := filelock.TryLock(path)
		if err != nil {
			return nil
		}
		if ok {
			return unlock
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// snapshotVersion changes whenever snapshotBase or Rule change shape, so that an upgraded binary
// never reads an older snapshot that lacks a field (user_policies would read as disabled).
const snapshotVersion = "3"

// sourceKey identifies the policy's source files as they are now, checking each like Load does.
func sourceKey(opts LoadOptions, trusted []int) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "v%s %v\n", snapshotVersion, trusted)
	add := func(path string, isDir bool) error {
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if err := checkTrusted(fi, path, trusted, isDir); err != nil {
			return err
		}
		id, ok := fileIdentity(fi)
		if !ok {
			return errors.New("no inode and change time on this system: no snapshot")
		}
		fmt.Fprintf(h, "%s %d %s\n", path, fi.Size(), id)
		return nil
	}
	if err := checkAbove(opts.Path, trusted); err != nil {
		return "", err
	}
	if err := add(filepath.Dir(opts.Path), true); err != nil {
		return "", err
	}
	if err := add(opts.Path, false); err != nil {
		return "", err
	}
	if opts.DropInDir != "" {
		entries, err := os.ReadDir(opts.DropInDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err == nil {
			if err := add(opts.DropInDir, true); err != nil {
				return "", err
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".yaml") && !strings.HasPrefix(e.Name(), ".") {
					if err := add(filepath.Join(opts.DropInDir, e.Name()), false); err != nil {
						return "", err
					}
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// snapshotBase is everything but the rules.
type snapshotBase struct {
	Providers map[string]*Provider
	Broken    map[string]string
	BrokenBy  map[string]*Provider
	Deny      []Identity
	Files     []string
	// UserPolicies is the user_policies block: cached decisions must consult users' files too.
	UserPolicies UserPolicies
	Chain        *Chain `json:",omitempty"`
}

// snapshotRule is a rule with its place in the policy, which decides between rules that allow
// with different options.
type snapshotRule struct {
	Seq int
	Rule
}

func shardOf(principal string) string {
	sum := sha256.Sum256([]byte(principal))
	return hex.EncodeToString(sum[:1])
}

func readSnapshot(dir, principal string) (*Policy, error) {
	if _, err := os.Stat(filepath.Join(dir, "complete")); err != nil {
		return nil, err
	}
	var base snapshotBase
	if err := readJSON(filepath.Join(dir, "base.json"), &base); err != nil {
		return nil, err
	}
	var shard map[string][]snapshotRule
	if err := readJSON(filepath.Join(dir, "rules-"+shardOf(principal)+".json"), &shard); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// Rules whose principals_from globs are patterns can apply to any principal: they are in one
	// file that every lookup reads, merged with the shard's in policy order.
	var patterned []snapshotRule
	if err := readJSON(filepath.Join(dir, "rules-patterns.json"), &patterned); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rules := append(shard[principal], patterned...)
	slices.SortStableFunc(rules, func(a, b snapshotRule) int { return a.Seq - b.Seq })
	p := &Policy{Providers: base.Providers, Deny: base.Deny, Files: base.Files,
		UserPolicies: base.UserPolicies, Chain: base.Chain, Broken: map[string]error{}, brokenByName: base.BrokenBy}
	for _, r := range rules {
		p.Rules = append(p.Rules, r.Rule)
	}
	for name, msg := range base.Broken {
		p.Broken[name] = errors.New(msg)
	}
	return p, nil
}

func writeSnapshot(cacheDir, dir string, p *Policy) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(cacheDir, ".policy-tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	base := snapshotBase{Providers: p.Providers, Broken: map[string]string{}, BrokenBy: p.brokenByName, Deny: p.Deny, Files: p.Files,
		UserPolicies: p.UserPolicies, Chain: p.Chain}
	for name, err := range p.Broken {
		base.Broken[name] = err.Error()
	}
	if err := writeJSON(filepath.Join(tmp, "base.json"), base); err != nil {
		return err
	}
	shards := map[string]map[string][]snapshotRule{}
	var patterned []snapshotRule
	for i, r := range p.Rules {
		names := r.Principals
		if r.PrincipalsFrom != "" {
			lit, ok := literalGlobs(r.PrincipalsAllowed)
			if !ok {
				patterned = append(patterned, snapshotRule{i, r})
				continue
			}
			names = lit
		}
		for _, pr := range slices.Compact(slices.Sorted(slices.Values(names))) {
			s := shardOf(pr)
			if shards[s] == nil {
				shards[s] = map[string][]snapshotRule{}
			}
			shards[s][pr] = append(shards[s][pr], snapshotRule{i, r})
		}
	}
	for s, m := range shards {
		if err := writeJSON(filepath.Join(tmp, "rules-"+s+".json"), m); err != nil {
			return err
		}
	}
	if len(patterned) > 0 {
		if err := writeJSON(filepath.Join(tmp, "rules-patterns.json"), patterned); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err // a concurrent verify renamed its identical snapshot first
	}
	// Older snapshots are no longer reachable by any key; remove them.
	old, _ := filepath.Glob(filepath.Join(cacheDir, "policy-*"))
	for _, o := range old {
		if o != dir {
			os.RemoveAll(o)
		}
	}
	return nil
}

func checkSnapshotDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	uid, _, ok := fileowner.Of(fi)
	if !fi.IsDir() || !ok || (uid != 0 && uid != os.Geteuid()) || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is not a private directory of this user or root", dir)
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
