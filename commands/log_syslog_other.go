//go:build windows || plan9

package commands

import (
	"errors"
	"io"
)

// dialSyslogSocket fails: Go has no syslog client here. verify is a Unix server command; this only
// keeps the client commands building.
func dialSyslogSocket(string) (io.WriteCloser, error) {
	return nil, errors.New("syslog is not available on this system")
}
