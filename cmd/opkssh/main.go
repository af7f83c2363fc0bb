// Command opkssh: SSH with your OpenID Connect identity. See "opkssh --help".
package main

import (
	"os"

	"github.com/opkssh-team/opkssh/commands"
)

func main() { os.Exit(commands.Main()) }
