package testop

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// maxPage bounds how much of a response Browse reads.
const maxPage = 1 << 20

// Browse plays a user's browser through a login: it GETs rawURL with a cookie
// jar, following redirects (to the OP and back to the client's loopback
// callback), and when a page is testop's login form it submits it once with
// user and password. It returns nil if the final response is 2xx, and an
// error describing the page otherwise, including a login form shown again
// because the credentials were refused.
//
// Browse only understands testop's own login form; it is not a general HTML
// client.
func Browse(ctx context.Context, rawURL string, user, password string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	client := &http.Client{Jar: jar}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("browse %s: %w", rawURL, err)
	}
	page, err := fetch(client, req)
	if err != nil {
		return err
	}
	form, isLogin := parseLoginForm(page.body)
	if !isLogin {
		return page.check()
	}

	action, err := page.url.Parse(form.action)
	if err != nil {
		return fmt.Errorf("login form at %s: bad action %q: %w", page.url, form.action, err)
	}
	form.fields.Set("username", user)
	form.fields.Set("password", password)
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.fields.Encode()))
	if err != nil {
		return fmt.Errorf("login form at %s: %w", page.url, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	page, err = fetch(client, req)
	if err != nil {
		return err
	}
	if again, isLogin := parseLoginForm(page.body); isLogin {
		if again.message == "" {
			again.message = "the login form was shown again"
		}
		return fmt.Errorf("login as %q refused at %s: %s", user, page.url, again.message)
	}
	return page.check()
}

// page is the final response of a request after redirects.
type page struct {
	url    *url.URL
	status int
	body   string
}

func fetch(client *http.Client, req *http.Request) (*page, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return nil, fmt.Errorf("browse %s: reading response: %w", resp.Request.URL, err)
	}
	return &page{url: resp.Request.URL, status: resp.StatusCode, body: string(body)}, nil
}

// check turns a non-2xx page into an error that quotes the start of it.
func (p *page) check() error {
	if p.status >= 200 && p.status < 300 {
		return nil
	}
	text := p.body
	if m := errorParagraphRE.FindStringSubmatch(text); m != nil {
		text = html.UnescapeString(m[1])
	}
	text = strings.TrimSpace(text)
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	if text == "" {
		return fmt.Errorf("browse %s: %s", redact(p.url), http.StatusText(p.status))
	}
	return fmt.Errorf("browse %s: %d %s: %s", redact(p.url), p.status, http.StatusText(p.status), text)
}

// redact drops the query of u, which may carry an authorization code.
func redact(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	return c.String()
}

// The patterns below read the markup of loginPage and errorPage in
// authorize.go, which html/template renders with double-quoted, escaped
// attribute values.
var (
	loginFormRE      = regexp.MustCompile(`(?s)<form\b([^>]*\bid="login-form"[^>]*)>(.*?)</form>`)
	inputRE          = regexp.MustCompile(`<input\b([^>]*)>`)
	attributeRE      = regexp.MustCompile(`([a-zA-Z-]+)="([^"]*)"`)
	errorParagraphRE = regexp.MustCompile(`(?s)<p\b[^>]*\bid="error"[^>]*>(.*?)</p>`)
)

type loginForm struct {
	action  string
	fields  url.Values
	message string // the error shown above the form, if any
}

// parseLoginForm recognizes testop's login form in body.
func parseLoginForm(body string) (*loginForm, bool) {
	m := loginFormRE.FindStringSubmatch(body)
	if m == nil {
		return nil, false
	}
	form := &loginForm{action: attributes(m[1]).Get("action"), fields: url.Values{}}
	for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
		attrs := attributes(in[1])
		if name := attrs.Get("name"); name != "" {
			form.fields.Set(name, attrs.Get("value"))
		}
	}
	if !form.fields.Has("username") || !form.fields.Has("password") {
		return nil, false
	}
	if e := errorParagraphRE.FindStringSubmatch(body); e != nil {
		form.message = html.UnescapeString(e[1])
	}
	return form, true
}

func attributes(tag string) url.Values {
	attrs := url.Values{}
	for _, a := range attributeRE.FindAllStringSubmatch(tag, -1) {
		attrs.Set(strings.ToLower(a[1]), html.UnescapeString(a[2]))
	}
	return attrs
}
