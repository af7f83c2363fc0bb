package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// A browser on another machine than opkssh (the login URL copied over, e.g. from an ssh session)
// follows the OP's redirect to http://localhost:PORT/login-callback on its own machine, where
// nothing listens: the page does not load, but its address holds the authorization response.
// The user pastes that address, and it is handled exactly like a redirect to our listener: the
// same state check (a pasted address of another login is refused) and the same code exchange,
// with the PKCE verifier that never left this machine.

const pasteHint = "If your browser ran on another machine, it ends on a page that does not load; paste that page's address here."

// readPasted reads lines from r until one carries this flow's authorization response, r ends, or
// ctx ends (the login finished another way). Lines that are not such an address, or that belong
// to another login, are refused with a message on status.
func (f *browserFlow) readPasted(ctx context.Context, r io.Reader, callback *url.URL, status io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		line := strings.Trim(strings.TrimSpace(sc.Text()), `"'<>`)
		if line == "" {
			continue
		}
		q, ok := pastedResponse(line, callback)
		if !ok {
			fmt.Fprintf(status, "That is not the address the login ended on (%s?state=…&code=…); paste it again, or press Ctrl-C to cancel.\n", callback)
			continue
		}
		err := f.handleResponse(q)
		if errors.Is(err, errStaleState) {
			fmt.Fprintf(status, "Refused: %v. Paste the address this login ended on, or press Ctrl-C to cancel.\n", err)
			continue
		}
		return // the flow is finished, with a login or an error
	}
}

// pastedResponse returns the query of line if line is an address on the redirect URI's path
// carrying an authorization response: a state and a code or an error.
func pastedResponse(line string, callback *url.URL) (url.Values, bool) {
	u, err := url.Parse(line)
	if err != nil || u.Path != callback.Path {
		return nil, false
	}
	q := u.Query()
	if q.Get("state") == "" || q.Get("code") == "" && q.Get("error") == "" {
		return nil, false
	}
	return q, true
}
