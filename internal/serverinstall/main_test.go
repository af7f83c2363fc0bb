package serverinstall

import (
	"os"
	"testing"

	"github.com/opkssh-team/opkssh/internal/sandbox"
)

// noSandbox says why these tests could not get an isolated file-system view, if they could not.
var noSandbox error

// The tests that create the verify user run useradd and userdel, which write the machine's
// /etc/passwd: all tests of this package run in a sandbox, where that stays private.
func TestMain(m *testing.M) {
	os.Exit(sandbox.Main(sandbox.Defaults(), func(unavailable error) int {
		noSandbox = unavailable
		return m.Run()
	}))
}
