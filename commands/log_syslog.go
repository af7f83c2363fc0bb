//go:build !windows && !plan9

package commands

import (
	"io"
	"log/syslog"
)

// dialSyslogSocket connects to a local syslog socket with facility AUTHPRIV and tag "opkssh".
// journald and rsyslog listen on a datagram socket; some syslog daemons use a stream one.
func dialSyslogSocket(path string) (io.WriteCloser, error) {
	w, err := syslog.Dial("unixgram", path, syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "opkssh")
	if err == nil {
		return w, nil
	}
	if w, err2 := syslog.Dial("unix", path, syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "opkssh"); err2 == nil {
		return w, nil
	}
	return nil, err
}
