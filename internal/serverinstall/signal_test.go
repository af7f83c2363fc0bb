package serverinstall

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// signal is how install reloads sshd from /run/sshd.pid: signal 0 probes, SIGHUP reloads.
func TestSignal(t *testing.T) {
	if err := signal(os.Getpid(), 0); err != nil {
		t.Fatalf("probing this process: %v", err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := signal(gone.Process.Pid, 0); err == nil {
		// Unless another process took the pid in between (rare, but a busy machine reuses pids).
		if _, statErr := os.Stat(fmt.Sprintf("/proc/%d", gone.Process.Pid)); statErr != nil {
			t.Fatalf("probing exited pid %d succeeded", gone.Process.Pid)
		}
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	if err := signal(child.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	err := child.Wait()
	ws, ok := child.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		t.Fatalf("child ended with %v (%v), want killed by SIGHUP", err, child.ProcessState)
	}
}
