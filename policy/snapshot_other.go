//go:build !linux

package policy

import "io/fs"

// fileIdentity is not implemented off Linux: LoadForPrincipal then always loads the YAML.
func fileIdentity(fs.FileInfo) (string, bool) { return "", false }
