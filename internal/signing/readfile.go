package signing

import (
	"fmt"
	"io"
	"os"
)

// ReadFile reads a signature, policy or signers file of at most limit bytes: these come from
// whoever made the signature or the repository, so their size is bounded before they are parsed.
func ReadFile(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
