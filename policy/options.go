package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Per-rule authorized_keys options. A rule may carry options that verify appends to the line it
// prints, so that sshd enforces them for logins the rule allows:
//
//	options: [restrict, 'command="/usr/local/bin/deploy"', 'from="10.0.0.0/8"']
//
// Each entry holds one option or several separated by commas, written as in authorized_keys(5).
// They are checked against sshd's grammar when the policy loads: known option names only (the
// flags restrict, [no-]agent-forwarding, [no-]port-forwarding, [no-]pty, [no-]user-rc,
// [no-]x11-forwarding, no-touch-required, verify-required, and command, environment, expiry-time,
// from, permitlisten, permitopen and tunnel with a double-quoted value), values quoted as sshd
// reads them, with no control characters. cert-authority and principals are verify's own and are
// refused. A problem makes that rule unusable (Rule.Broken, reason rule_broken), loudly, while the
// other rules keep working: a rule that cannot be enforced as written must not allow without its
// restrictions. Options come from the policy only; nothing from a token ever reaches the line.

// maxOptionsLen bounds the options of one rule, far below sshd's line limit.
const maxOptionsLen = 4096

var optionFlags = []string{
	"restrict", "agent-forwarding", "no-agent-forwarding", "port-forwarding", "no-port-forwarding",
	"pty", "no-pty", "user-rc", "no-user-rc", "x11-forwarding", "no-x11-forwarding",
	"no-touch-required", "verify-required",
}

// optionValued maps each option that takes a value to the check of that value.
var optionValued = map[string]func(string) string{
	"command":      checkNonEmptyOpt,
	"environment":  checkEnvironmentOpt,
	"expiry-time":  checkExpiryOpt,
	"from":         checkFromOpt,
	"permitlisten": checkListenOpt,
	"permitopen":   checkOpenOpt,
	"tunnel":       checkTunnelOpt,
}

// repeatable are the valued options sshd accepts more than once.
var repeatable = []string{"environment", "permitlisten", "permitopen"}

// ParseOptions parses authorized_keys options as sshd does and returns them rendered one per
// entry, or what is wrong.
func ParseOptions(entries []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	total := 0
	for _, e := range entries {
		opts, err := parseOptionString(e)
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", quote(e), err)
		}
		for _, o := range opts {
			if seen[o.name] && !slices.Contains(repeatable, o.name) && o.hasValue {
				return nil, fmt.Errorf("option %q is given twice; sshd refuses a line with two", o.name)
			}
			seen[o.name] = true
			r := o.render()
			total += len(r) + 1
			out = append(out, r)
		}
	}
	if total > maxOptionsLen {
		return nil, fmt.Errorf("options are %d bytes long; keep them under %d", total, maxOptionsLen)
	}
	return out, nil
}

type keyOption struct {
	name     string
	value    string
	hasValue bool
}

func (o keyOption) render() string {
	if !o.hasValue {
		return o.name
	}
	return o.name + `="` + strings.ReplaceAll(o.value, `"`, `\"`) + `"`
}

// parseOptionString reads comma-separated options with sshd's quoting: a value is enclosed in
// double quotes, and \" stands for a quote inside it (no other escapes).
func parseOptionString(s string) ([]keyOption, error) {
	if s == "" {
		return nil, fmt.Errorf("is empty")
	}
	var out []keyOption
	for {
		end := strings.IndexAny(s, "=,")
		if end < 0 {
			end = len(s)
		}
		o := keyOption{name: strings.ToLower(s[:end])}
		if err := checkOptionName(o.name); err != nil {
			return nil, err
		}
		s = s[end:]
		check, valued := optionValued[o.name]
		switch {
		case strings.HasPrefix(s, "=") && !valued:
			return nil, fmt.Errorf("%q takes no value", o.name)
		case !strings.HasPrefix(s, "=") && valued:
			return nil, fmt.Errorf(`%q needs a value in double quotes, e.g. %s="..."`, o.name, o.name)
		case valued:
			v, rest, err := dequoteOption(s[1:])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.name, err)
			}
			if msg := check(v); msg != "" {
				return nil, fmt.Errorf("%s=%s: %s", o.name, quote(v), msg)
			}
			o.value, o.hasValue, s = v, true, rest
			if back, _, err := dequoteOption(strings.TrimPrefix(o.render(), o.name+"=")); err != nil || back != v {
				return nil, fmt.Errorf("%s: the value cannot be written so that sshd reads it back unchanged (a backslash before a quote?)", o.name)
			}
		}
		out = append(out, o)
		if s == "" {
			return out, nil
		}
		if s[0] != ',' || len(s) == 1 {
			return nil, fmt.Errorf("expected a comma between options, found %s", quote(s))
		}
		s = s[1:]
	}
}

func checkOptionName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("an option name is empty (two commas?)")
	case name == "cert-authority" || name == "principals":
		return fmt.Errorf("%q is set by opkssh verify itself; remove it", name)
	case slices.Contains(optionFlags, name):
		return nil
	case optionValued[name] != nil:
		return nil
	}
	return fmt.Errorf("unknown option %q (known: %s, and %s with a value)", name, strings.Join(optionFlags, ", "),
		strings.Join(slices.Sorted(maps.Keys(optionValued)), ", "))
}

// dequoteOption reads a double-quoted value at the start of s, as sshd's authorized_keys parser
// does, and returns it with the rest of s.
func dequoteOption(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf(`the value must start with a double quote`)
	}
	s = s[1:]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case c < ' ' || c == 0x7f:
			return "", "", fmt.Errorf("the value contains a control character")
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("the value has no closing double quote")
}

func checkNonEmptyOpt(v string) string {
	if strings.TrimSpace(v) == "" {
		return "is empty"
	}
	return ""
}

func checkEnvironmentOpt(v string) string {
	name, _, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return "must be NAME=value"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return "the variable name may hold only letters, digits and _"
		}
	}
	return ""
}

func checkExpiryOpt(v string) string {
	s := strings.TrimSuffix(v, "Z")
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(s) == len(layout) {
			if _, err := time.Parse(layout, s); err == nil {
				return ""
			}
		}
	}
	return "must be YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS (optionally ending in Z for UTC)"
}

func checkFromOpt(v string) string {
	for _, pat := range strings.Split(v, ",") {
		if strings.TrimPrefix(pat, "!") == "" {
			return "has an empty pattern; write e.g. 10.0.0.0/8,bastion.example.com"
		}
		for i := 0; i < len(pat); i++ {
			c := pat[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".:-_*?/![]", c) >= 0) {
				return fmt.Sprintf("pattern %q has %q; write host names, addresses or networks", pat, c)
			}
		}
	}
	return ""
}

// splitHostPort splits host:port, with [v6]:port; host "" when there is no colon.
func splitHostPort(v string) (string, string) {
	if strings.HasPrefix(v, "[") {
		if i := strings.Index(v, "]:"); i > 0 {
			return v[1:i], v[i+2:]
		}
		return v, ""
	}
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return "", v
	}
	return v[:i], v[i+1:]
}

func validPort(p string) bool {
	if p == "*" {
		return true
	}
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

func checkOpenOpt(v string) string {
	host, port := splitHostPort(v)
	if host == "" || !validPort(port) || strings.ContainsAny(host, " \t,") {
		return "must be host:port (port a number or *), e.g. db.internal:5432"
	}
	return ""
}

func checkListenOpt(v string) string {
	host, port := splitHostPort(v)
	if !validPort(port) || strings.ContainsAny(host, " \t,") {
		return "must be [host:]port (port a number or *), e.g. localhost:8080"
	}
	return ""
}

func checkTunnelOpt(v string) string {
	if v == "any" || v != "" && strings.Trim(v, "0123456789") == "" && len(v) <= 9 {
		return ""
	}
	return `must be a tun device number or "any"`
}

// ruleOptions reads a rule's options. Every problem breaks the rule only (Rule.Broken).
func (p *parser) ruleOptions(m map[string]entry, r *Rule, field string) {
	e, ok := m["options"]
	if !ok {
		return
	}
	errs := &errList{}
	list, ok := p.strList(errs, e.val, field+".options")
	if !ok {
		r.Broken = errs.err().Error()
		return
	}
	opts, err := ParseOptions(list)
	if err != nil {
		r.Broken = (&Error{Pos: p.pos(e.val), Field: field + ".options", Msg: err.Error() + "; see authorized_keys(5)"}).Error()
		return
	}
	r.Options = opts
}

// BrokenRules describes every rule that can never allow because of an error of its own, with its
// file and line: policy check reports them, verify denies with ReasonRuleBroken.
func (p *Policy) BrokenRules() []string {
	var out []string
	for _, r := range p.Rules {
		if r.Broken != "" {
			out = append(out, fmt.Sprintf("rule at %s is unusable: %s", r.Pos, r.Broken))
		}
	}
	return out
}
