package commands

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// decisionLog says where verify's decision lines go. sshd discards the command's stderr unless its
// LogLevel is DEBUG, so each decision (one JSON line) is also sent to syslog, which is journald on
// systemd systems, and appended to a file. Never to stdout: that belongs to sshd.
type decisionLog struct {
	// Syslog is the local syslog socket; decisions go there, with facility AUTHPRIV and tag
	// "opkssh", when it exists. "" means no syslog.
	Syslog string
	// DefaultFile is appended to when --log-file is not given and its directory exists.
	DefaultFile string
}

// syslogSocket is where syslog daemons and journald receive local messages.
const syslogSocket = "/dev/log"

// openDecisionLog logs JSON lines to stderr, to syslog when /dev/log exists, and to the file path
// (or DefaultLogFile when path is "" and /var/log/opkssh exists).
func openDecisionLog(stderr io.Writer, path string) (*slog.Logger, func()) {
	return decisionLog{Syslog: syslogSocket, DefaultFile: DefaultLogFile}.open(stderr, path)
}

// open returns the logger and the function that closes its destinations. A destination that
// cannot be opened is left out, and the others say why.
func (d decisionLog) open(stderr io.Writer, file string) (*slog.Logger, func()) {
	handlers := []slog.Handler{slog.NewJSONHandler(stderr, nil)}
	var closers []io.Closer
	var problems []error
	if w, err := d.dialSyslog(); err != nil {
		problems = append(problems, err)
	} else if w != nil {
		handlers = append(handlers, slog.NewJSONHandler(w, nil))
		closers = append(closers, w)
	}
	if path := d.filePath(file); path != "" {
		// Opened per call in append mode, so that logrotate can move the file between logins.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			problems = append(problems, fmt.Errorf("cannot open the decision log file: %w", err))
		} else {
			handlers = append(handlers, slog.NewJSONHandler(f, nil))
			closers = append(closers, f)
		}
	}
	l := slog.New(slog.NewMultiHandler(handlers...))
	for _, p := range problems {
		l.Warn("a decision log destination is unavailable; logging to the others", "error", p.Error())
	}
	return l, func() {
		for _, c := range closers {
			c.Close()
		}
	}
}

// dialSyslog connects to the syslog socket; nil without error when there is none.
func (d decisionLog) dialSyslog() (io.WriteCloser, error) {
	if d.Syslog == "" {
		return nil, nil
	}
	fi, err := os.Stat(d.Syslog)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && fi.Mode().Type() != fs.ModeSocket {
		err = errors.New("not a socket")
	}
	if err != nil {
		return nil, fmt.Errorf("syslog %s: %w", d.Syslog, err)
	}
	w, err := dialSyslogSocket(d.Syslog)
	if err != nil {
		return nil, fmt.Errorf("syslog %s: %w", d.Syslog, err)
	}
	return w, nil
}

// filePath is the file to append to: the one given, or the default when its directory exists.
func (d decisionLog) filePath(given string) string {
	if given != "" || d.DefaultFile == "" {
		return given
	}
	if _, err := os.Stat(filepath.Dir(d.DefaultFile)); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return d.DefaultFile
}
