package commands

import (
	"errors"
	"fmt"
	"io"
	"runtime"
)

// The browser side of login: saying at once what to do when no browser will open here, instead
// of waiting for the --timeout with nothing but a localhost URL on the screen.

// noBrowserHint names the two logins that need no browser on this machine.
const noBrowserHint = `log in with --device (enter a code shown here on any device) or --no-browser (open the printed URL in any browser and paste back the address it ends on)`

// hasDisplay reports whether a graphical browser could open here: always on macOS and Windows;
// elsewhere only with an X11 or Wayland display, or a browser named in $BROWSER.
func hasDisplay(getenv func(string) string) bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != "" || getenv("BROWSER") != ""
}

// warnNoDisplay says, before the login starts, that a browser is unlikely to open, and reports
// whether it did. The login still tries: a console browser or a scripted one may be on PATH.
func warnNoDisplay(w io.Writer, getenv func(string) string) bool {
	if hasDisplay(getenv) {
		return false
	}
	fmt.Fprintf(w, "No display here ($DISPLAY and $WAYLAND_DISPLAY are unset): if no browser opens, %s.\n", noBrowserHint)
	return true
}

// errNoBrowser ends a login that nobody could finish by hand.
var errNoBrowser = errors.New("no browser could be opened")

// onNoBrowser is what login does when opening the browser failed: on a terminal (or with
// --paste) it says how to log in without one (unless warnNoDisplay just did) and keeps waiting,
// since the user may still open the printed URL; without one, as in the ssh-config block that ssh
// runs with stdin from /dev/null, nobody could, so the login fails at once with the same advice.
func onNoBrowser(w io.Writer, interactive, hinted bool) func(error) error {
	return func(err error) error {
		if interactive {
			if !hinted {
				fmt.Fprintf(w, "Without a browser here, %s.\n", noBrowserHint)
			}
			return nil
		}
		return fmt.Errorf(`%w (%v), and stdin is not a terminal (as when ssh runs the ssh-config block), so nobody could finish the login by hand. In a terminal, run "opkssh login --device" (enter a code shown there on any device) or "opkssh login --no-browser" (open the printed URL in any browser and paste back the address it ends on)`, errNoBrowser, err)
	}
}
