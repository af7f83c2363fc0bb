// Package serverconfig is the server's side of opkssh in one place: where its files are by
// default, and verify's command line as sshd runs it. "opkssh verify" registers its flags here,
// "opkssh doctor" parses the AuthorizedKeysCommand with the same flag set (so it checks exactly
// what verify will read), and "opkssh server install" creates the directories named here.
package serverconfig

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Default server paths.
const (
	ConfigDir      = "/etc/opkssh"
	PolicyFileName = "policies.yaml"
	PolicyPath     = ConfigDir + "/" + PolicyFileName
	CacheDir       = verifier.DefaultCacheDir // the verifier's own default
	LogDir         = "/var/log/opkssh"
	LogFile        = LogDir + "/verify.log"
)

// DropInDir is the directory of drop-in policy files read with the policy at policyPath.
func DropInDir(policyPath string) string {
	return filepath.Join(filepath.Dir(policyPath), "policies.d")
}

// Verify is verify's command line: its flags, with their defaults.
type Verify struct {
	PolicyPath  string
	LogFile     string // "" is LogFile when LogDir exists
	ClientAddr  string
	CacheDir    string // "" keeps keys in memory only
	StaleFor    time.Duration
	Timeout     time.Duration
	PolicyOwner int // a uid trusted besides root for policy and pinned key files; 0 is none
	// Chain is another AuthorizedKeysCommand for keys that are not opkssh certificates.
	Chain        string
	ChainTimeout time.Duration
}

// Register defines verify's flags on fl, writing into v.
func (v *Verify) Register(fl *pflag.FlagSet) {
	fl.StringVar(&v.PolicyPath, "policy", PolicyPath, "policy file; drop-ins are read from policies.d beside it")
	fl.StringVar(&v.LogFile, "log-file", "", "append decisions to this file (default "+LogFile+" when "+LogDir+" exists)")
	fl.StringVar(&v.ClientAddr, "client-addr", "", "sshd's %C (client address and port, server address and port): logged, and tested by rules with require.from")
	fl.DurationVar(&v.Timeout, "timeout", verifier.DefaultFetchTimeout, "limit for each request to the OP")
	fl.StringVar(&v.CacheDir, "cache-dir", CacheDir, "where the OPs' keys and a compiled policy snapshot are cached (owned by the verify user, mode 0700); \"\" for none")
	fl.DurationVar(&v.StaleFor, "stale-for", verifier.DefaultStaleFor, "how long cached keys stay usable while the OP is unreachable")
	fl.StringVar(&v.Chain, "chain", "", "another AuthorizedKeysCommand (\"COMMAND ARGS\") to run for keys that are not opkssh certificates")
	fl.DurationVar(&v.ChainTimeout, "chain-timeout", policy.DefaultChainTimeout, "limit for the --chain command")
	fl.IntVar(&v.PolicyOwner, "policy-owner", 0, "also trust policy files owned by this uid besides root (demos and tests; never in sshd_config)")
}

// ParseVerify reads verify's arguments as sshd passes them (the words of the
// AuthorizedKeysCommand after "verify", its %-tokens unexpanded) and returns the flags and the
// positional arguments. sshd passes a quoted empty argument ("" or ”) as those two characters;
// they are read as the empty string, as verify receives it from sshd.
func ParseVerify(args []string) (Verify, []string, error) {
	var v Verify
	fl := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	fl.SetOutput(io.Discard)
	v.Register(fl)
	words := make([]string, len(args))
	for i, a := range args {
		words[i] = unquoteEmpty(a)
	}
	if err := fl.Parse(words); err != nil {
		return v, nil, fmt.Errorf("verify's arguments %q: %w", strings.Join(args, " "), err)
	}
	return v, fl.Args(), nil
}

func unquoteEmpty(arg string) string {
	if name, val, ok := strings.Cut(arg, "="); ok && (val == `""` || val == "''") {
		return name + "="
	}
	if arg == `""` || arg == "''" {
		return ""
	}
	return arg
}

// PolicyOptions are how verify loads its policy.
func (v Verify) PolicyOptions() policy.LoadOptions {
	return policy.LoadOptions{Path: v.PolicyPath, DropInDir: DropInDir(v.PolicyPath), TrustedUIDs: v.TrustedUIDs()}
}

// TrustedUIDs are the owners verify trusts for policy files: root, and --policy-owner.
func (v Verify) TrustedUIDs() []int { return []int{0, v.PolicyOwner} }
