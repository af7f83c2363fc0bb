package policy

import (
	"fmt"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/argv"
)

// Chain is the chain block of policies.yaml: another AuthorizedKeysCommand that verify runs for
// keys that are not opkssh certificates (a plain key, or a certificate without a PK token), so that
// opkssh can share sshd's single AuthorizedKeysCommand with e.g. SSSD or EC2 Instance Connect.
//
//	chain:
//	  command: /usr/bin/sss_ssh_authorizedkeys %u   # split like sshd; %u %k %t expanded by verify
//	  timeout: 5s                                    # optional; default 5s, at most 60s
//
// The command is the administrator's: it runs as the verify user, and its output is printed as
// it is. An opkssh certificate never reaches it. verify --chain overrides this block.
type Chain struct {
	Command string
	Timeout time.Duration
	Pos     Position
}

// Chain timeouts.
const (
	DefaultChainTimeout = 5 * time.Second
	maxChainTimeout     = 60 * time.Second
)

// CheckChainCommand returns what is wrong with a chained command line, or "".
func CheckChainCommand(cmd string) string {
	words, err := argv.Split(cmd)
	switch {
	case err != nil:
		return fmt.Sprintf("%q: %v", cmd, err)
	case len(words) == 0:
		return "is empty"
	case !filepath.IsAbs(words[0]):
		return fmt.Sprintf("%q must start with an absolute path, as sshd's AuthorizedKeysCommand does", cmd)
	}
	return ""
}

// chain parses the chain block; key is its key node.
func (p *parser) chain(key, n *yaml.Node) {
	const field = "chain"
	c := &Chain{Timeout: DefaultChainTimeout, Pos: p.pos(key)}
	m, ok := p.fields(p.errs, n, field, "command", "timeout")
	if !ok {
		return
	}
	if e, ok := m["command"]; !ok {
		p.errs.add(c.Pos, field, "missing command; write e.g. command: /usr/bin/sss_ssh_authorizedkeys %%u")
	} else if s, ok := p.str(p.errs, e.val, field+".command"); ok {
		if msg := CheckChainCommand(s); msg != "" {
			p.errs.add(p.pos(e.val), field+".command", "%s", msg)
		}
		c.Command = s
	}
	if e, ok := m["timeout"]; ok {
		if s, ok := p.str(p.errs, e.val, field+".timeout"); ok {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 || d > maxChainTimeout {
				p.errs.add(p.pos(e.val), field+".timeout", "%q is not a duration above 0 and at most 60s; write e.g. 5s", s)
			}
			c.Timeout = d
		}
	}
	p.frag.chain = c
}
