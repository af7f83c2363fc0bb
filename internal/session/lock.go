package session

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opkssh-team/opkssh/internal/filelock"
)

// Lock waits until no other login of the key at keyPath holds its lock, calling waiting once if
// it has to wait, and returns the function that lets the next one go. ssh may start several
// "login --if-needed" at once (one per connection): with the lock, one logs in or renews and the
// others then find the certificate valid. The lock is keyPath.lock, which stays beside the key
// (empty); the key itself cannot be the lock: a login replaces it.
func Lock(keyPath string, waiting func()) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return nil, err
	}
	path := keyPath + ".lock"
	unlock, err := filelock.Lock(path, waiting)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return unlock, nil
}
