// Package agenttest runs a real OpenSSH ssh-agent for tests.
package agenttest

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Start runs "ssh-agent -D" on dir/agent.sock and waits until it listens. It returns the socket
// path and the function that stops the agent (by its PID) and waits for it.
func Start(dir string) (sock string, stop func(), err error) {
	sock = filepath.Join(dir, "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting ssh-agent: %w", err)
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return sock, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("ssh-agent does not listen on %s: %w", sock, err)
		}
	}
}
