//go:build unix

package filelock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLockExcludesWithinProcess checks what the callers rely on: two Locks of one path exclude
// each other, even in one process, and the second is told that it waits.
func TestLockExcludesWithinProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path, func() { t.Error("the first Lock waited") })
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	got := make(chan struct{})
	go func() {
		unlock2, err := Lock(path, func() { close(waiting) })
		if err == nil {
			unlock2()
		}
		close(got)
	}()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the second Lock was not told it waits")
	}
	select {
	case <-got:
		t.Fatal("second lock taken while the first is held")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	<-got
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v %v", fi, err)
	}
}

func TestLockRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), path); err != nil {
		t.Fatal(err)
	}
	if unlock, err := Lock(path, nil); err == nil {
		unlock()
		t.Fatal("locked through a symbolic link")
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); err == nil {
		t.Fatal("created the symbolic link's target")
	}
}

// TryLock never waits: it fails while another holds the lock (even in this process) and succeeds
// once the lock is free.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok, err := TryLock(path); ok || err != nil {
		if u != nil {
			u()
		}
		t.Fatalf("TryLock while held = %v, %v", ok, err)
	}
	unlock()
	u, ok, err := TryLock(path)
	if !ok || err != nil {
		t.Fatalf("TryLock when free = %v, %v", ok, err)
	}
	u()
	if err := os.Symlink(path, path+".link"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := TryLock(path + ".link"); ok || err == nil {
		t.Fatalf("TryLock through a symbolic link = %v, %v", ok, err)
	}
}
