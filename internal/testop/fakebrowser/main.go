// Command fakebrowser is a scripted browser for tests: put it where the login
// tool looks for xdg-open (or name it in BROWSER) and it completes the login
// at the test OP instead of a human.
//
// Usage:
//
//	FAKEBROWSER_USER=alice@example.com FAKEBROWSER_PASSWORD=password fakebrowser URL
//
// It GETs URL, follows redirects, fills in testop's login form with
// FAKEBROWSER_USER and FAKEBROWSER_PASSWORD if one is shown (auto-approve
// mode needs neither), and follows the redirect back to the client's
// callback. It exits 0 if the final page is 2xx and 1 with a message on
// stderr otherwise, within 30 seconds.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/opkssh-team/opkssh/internal/testop"
)

const usage = "usage: FAKEBROWSER_USER=alice@example.com FAKEBROWSER_PASSWORD=password fakebrowser URL"

func main() {
	if len(os.Args) != 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err := browse(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "fakebrowser:", err)
		os.Exit(1)
	}
}

func browse(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return testop.Browse(ctx, url, os.Getenv("FAKEBROWSER_USER"), os.Getenv("FAKEBROWSER_PASSWORD"))
}
