package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// attempt is what verify logged during one ssh connection or verify run: the lines the decision
// log gained meanwhile, so that a check never matches a line an earlier attempt wrote.
type attempt struct {
	raw       string
	decisions []map[string]any // the lines that carry a "decision"
}

// logOffset is the decision log's current size: where the next attempt's lines will start.
func (e *sshdEnv) logOffset(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(e.log)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince returns the lines the decision log gained after offset.
func (e *sshdEnv) logSince(t *testing.T, offset int64) attempt {
	t.Helper()
	f, err := os.Open(e.log)
	if err != nil {
		t.Fatalf("verify log: %v", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	a := attempt{raw: string(data)}
	for _, line := range strings.Split(strings.TrimSpace(a.raw), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("verify log line is not JSON: %v\n%s", err, line)
		}
		if _, ok := m["decision"]; ok {
			a.decisions = append(a.decisions, m)
		}
	}
	return a
}

// mustAll fails t unless the attempt holds a decision about the certificate and every such
// decision is decision with reason (any reason when reason is ""). ssh offers the plain key after
// a refused certificate; verify's not_a_certificate for it is no decision about the certificate.
func (a attempt) mustAll(t *testing.T, decision, reason string) {
	t.Helper()
	n := 0
	for _, d := range a.decisions {
		if d["reason"] == "not_a_certificate" && reason != "not_a_certificate" {
			continue
		}
		if d["decision"] != decision || reason != "" && d["reason"] != reason {
			t.Fatalf("want every decision of this attempt to be %s %q, got %v %v:\n%s", decision, reason, d["decision"], d["reason"], a.raw)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("verify logged no decision about the certificate for this attempt:\n%s", a.raw)
	}
}

// has fails t unless the attempt's log lines contain substr.
func (a attempt) has(t *testing.T, substr string) {
	t.Helper()
	if !strings.Contains(a.raw, substr) {
		t.Fatalf("this attempt's verify log lacks %q:\n%s", substr, a.raw)
	}
}
