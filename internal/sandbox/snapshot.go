package sandbox

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/opkssh-team/opkssh/internal/fileowner"
)

// Snapshot describes files: path -> type, mode, owner and (for compared files) content hash.
type Snapshot map[string]string

// Take describes every file below each of compare (with contents) and every entry of each
// directory in list (without contents: logs grow and caches change on a live machine). A path
// that does not exist is recorded as absent.
func Take(compare, list []string) (Snapshot, error) {
	s := Snapshot{}
	for _, root := range compare {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				s[path] = "absent"
				return nil
			}
			if err != nil {
				return err
			}
			desc, err := describe(path, true)
			s[path] = desc
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	for _, dir := range list {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			s[dir+"/"] = "absent"
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			desc, err := describe(path, false)
			if errors.Is(err, fs.ErrNotExist) {
				continue // gone between the listing and the look: a live machine, not us
			}
			if err != nil {
				return nil, err
			}
			if _, ok := s[path]; !ok {
				s[path] = desc
			}
		}
	}
	return s, nil
}

func describe(path string, content bool) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	uid, gid, _ := fileowner.Of(fi)
	desc := fmt.Sprintf("%v %d:%d", fi.Mode(), uid, gid)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		desc += " -> " + target
	case content && fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
		desc += fmt.Sprintf(" sha256:%x", h.Sum(nil))
	}
	return desc, nil
}

// Diff lists, in path order, what differs between s (before) and after.
func (s Snapshot) Diff(after Snapshot) []string {
	var out []string
	for path, was := range s {
		if now, ok := after[path]; !ok {
			out = append(out, fmt.Sprintf("%s: was %s, now gone", path, was))
		} else if now != was {
			out = append(out, fmt.Sprintf("%s: was %s, now %s", path, was, now))
		}
	}
	for path, now := range after {
		if _, ok := s[path]; !ok {
			out = append(out, fmt.Sprintf("%s: new: %s", path, now))
		}
	}
	slices.Sort(out)
	return out
}
