package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/sshcert"
)

// The record of the keys login wrote. A login with --key-file writes its key where ssh, status,
// "login --if-needed" and logout would not look by themselves; Login.Save therefore notes every
// key it writes in ~/.ssh/opkssh-logins.json, and KeyPaths reads the note back. The record sits
// beside the keys it names, in the directory whose owner they belong to, and holds nothing
// secret: paths, key types and issuers. It is only a list of places to look: what is there is
// judged from the files themselves (a key opkssh did not create is still never touched), so a
// stale or hand-edited record can make a command look at a file, never trust one.

// RecordName is the record's file name in the key directory (Keys.Dir).
const RecordName = "opkssh-logins.json"

// recordVersion is the format of the record; a record of another version is ignored whole.
const recordVersion = 1

// RecordEntry is one key login wrote.
type RecordEntry struct {
	Key     string    `json:"key"` // absolute path of the private key
	Type    KeyType   `json:"type"`
	Issuer  string    `json:"issuer,omitempty"`
	Written time.Time `json:"written"`
}

type recordFile struct {
	Version int           `json:"version"`
	Logins  []RecordEntry `json:"logins"` // the most recent first
}

// ErrNotRecorded wraps a failure to note a written key in the record: the login itself worked,
// but commands without --key-file will not find the key.
var ErrNotRecorded = errors.New("could not note the key in the record of opkssh's logins")

// RecordPath is the record of the keys login wrote.
func (k Keys) RecordPath() string { return filepath.Join(k.Dir, RecordName) }

// Recorded are the keys login wrote, the most recent first. A missing record is an empty one; one
// that cannot be parsed is an error that names it.
func (k Keys) Recorded() ([]RecordEntry, error) {
	data, err := os.ReadFile(k.RecordPath())
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil // no record, or no key directory to hold one
	}
	if err != nil {
		return nil, err
	}
	var r recordFile
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %v; remove it (opkssh then looks only at the default keys and those you name)", k.RecordPath(), err)
	}
	if r.Version != recordVersion {
		return nil, nil
	}
	var out []RecordEntry
	for _, e := range r.Logins {
		if filepath.IsAbs(e.Key) {
			out = append(out, e)
		}
	}
	return out, nil
}

// remember puts e first in the record, in place of an earlier entry for the same key, and drops
// the entries whose key and certificate are both gone.
func (k Keys) remember(e RecordEntry) error {
	return k.rewrite(func(old []RecordEntry) []RecordEntry {
		kept := []RecordEntry{e}
		for _, o := range old {
			if o.Key != e.Key {
				kept = append(kept, o)
			}
		}
		return kept
	})
}

// Forget drops keyPaths from the record (logout calls it for the keys it removed). The record
// goes when it names no key any more.
func (k Keys) Forget(keyPaths ...string) error {
	gone := map[string]bool{}
	for _, p := range keyPaths {
		if abs, err := filepath.Abs(p); err == nil {
			gone[abs] = true
		}
	}
	return k.rewrite(func(old []RecordEntry) []RecordEntry {
		var kept []RecordEntry
		for _, o := range old {
			if !gone[o.Key] {
				kept = append(kept, o)
			}
		}
		return kept
	})
}

func (k Keys) rewrite(change func([]RecordEntry) []RecordEntry) error {
	old, err := k.Recorded()
	if err != nil {
		old = nil // a broken record is replaced: it could only be ignored
	}
	var entries []RecordEntry
	for _, e := range change(old) {
		if keyOrCertExists(e.Key) {
			entries = append(entries, e)
		}
	}
	path := k.RecordPath()
	if len(entries) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.MarshalIndent(recordFile{Version: recordVersion, Logins: entries}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(k.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

func keyOrCertExists(keyPath string) bool {
	for _, p := range []string{keyPath, sshcert.CertPath(keyPath)} {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}
