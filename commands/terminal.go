package commands

import (
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether s (the command's stdin, stdout or stderr) is a terminal.
func isTerminal(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is the number of columns of the terminal s, or 0 when s is not a terminal (or a
// dumb one, which may not draw the block characters of a QR code).
func terminalWidth(s any) int {
	f, ok := s.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return w
}
