package commands

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// listenSyslog stands in for /dev/log: a unix datagram socket in a temporary directory.
func listenSyslog(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return path, conn
}

func TestDecisionLogDestinations(t *testing.T) {
	sock, conn := listenSyslog(t)
	file := filepath.Join(t.TempDir(), "verify.log")
	if err := os.WriteFile(file, []byte("earlier line\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	l, closeLog := decisionLog{Syslog: sock}.open(&stderr, file)
	l.Info("opkssh verify", "decision", "deny", "reason", "no_rule_for_principal")
	closeLog()

	const decision = `"msg":"opkssh verify","decision":"deny","reason":"no_rule_for_principal"}`
	if !strings.HasSuffix(stderr.String(), decision+"\n") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr: %q", stderr.String())
	}
	data, _ := os.ReadFile(file)
	if lines := strings.Split(string(data), "\n"); len(lines) != 3 || lines[0] != "earlier line" || !strings.HasSuffix(lines[1], decision) {
		t.Errorf("log file not appended to: %q", data)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("nothing reached syslog: %v", err)
	}
	// <86> is facility AUTHPRIV (10) and severity INFO (6).
	msg := regexp.MustCompile(`^<86>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d opkssh\[\d+\]: \{.*\}\n$`)
	if !msg.Match(buf[:n]) || !bytes.Contains(buf[:n], []byte(decision)) {
		t.Errorf("syslog message %q", buf[:n])
	}
}

func TestDecisionLogWithoutSyslogOrDirectory(t *testing.T) {
	dir := t.TempDir()
	d := decisionLog{Syslog: filepath.Join(dir, "no-such-socket"), DefaultFile: filepath.Join(dir, "missing", "verify.log")}
	var stderr bytes.Buffer
	l, closeLog := d.open(&stderr, "")
	l.Info("opkssh verify", "decision", "allow")
	closeLog()
	if strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), `"decision":"allow"`) {
		t.Errorf("stderr: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Dir(d.DefaultFile)); !os.IsNotExist(err) {
		t.Errorf("the default log directory was created: %v", err)
	}
}

func TestDecisionLogDefaultFile(t *testing.T) {
	d := decisionLog{DefaultFile: filepath.Join(t.TempDir(), "verify.log")}
	var stderr bytes.Buffer
	l, closeLog := d.open(&stderr, "")
	l.Info("opkssh verify", "decision", "allow")
	closeLog()
	fi, err := os.Stat(d.DefaultFile)
	if err != nil || fi.Mode().Perm()&^0o640 != 0 {
		t.Fatalf("default file: %v %v", fi, err)
	}
	if data, _ := os.ReadFile(d.DefaultFile); !bytes.Contains(data, []byte(`"decision":"allow"`)) {
		t.Errorf("default file: %q", data)
	}
}

// A destination that cannot be opened must not cost the decision: it goes to the others, with a
// warning saying what is missing.
func TestDecisionLogUnavailableDestinations(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "plain-file")
	os.WriteFile(notSocket, nil, 0o644)
	var stderr bytes.Buffer
	l, closeLog := decisionLog{Syslog: notSocket}.open(&stderr, filepath.Join(dir, "missing", "verify.log"))
	l.Info("opkssh verify", "decision", "deny")
	closeLog()
	out := stderr.String()
	if strings.Count(out, `"level":"WARN"`) != 2 || !strings.Contains(out, "not a socket") ||
		!strings.Contains(out, "cannot open the decision log file") || !strings.Contains(out, `"decision":"deny"`) {
		t.Errorf("stderr: %s", out)
	}
}
