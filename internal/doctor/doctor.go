// Package doctor checks everything `opkssh verify` depends on, the way sshd will run it, and says
// what to fix: sshd's effective settings, the binary's and its directories' ownership, the policy,
// each provider's keys and clock, the cache and log directories, and SELinux.
package doctor

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opkssh-team/opkssh/internal/argv"
	"github.com/opkssh-team/opkssh/internal/fileowner"
	"github.com/opkssh-team/opkssh/internal/serverconfig"
	"github.com/opkssh-team/opkssh/internal/words"
	"github.com/opkssh-team/opkssh/policy"
	"github.com/opkssh-team/opkssh/verifier"
)

// Levels of a finding.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "FAIL"
)

// Finding is one result.
type Finding struct {
	Level string `json:"level"`
	Check string `json:"check"`
	Msg   string `json:"message"`
	Fix   string `json:"fix,omitempty"`
}

// Options say where to look. Paths named in sshd's AuthorizedKeysCommand (--policy, --cache-dir,
// --log-file) take precedence over these defaults.
type Options struct {
	SSHD       string // /usr/sbin/sshd
	SSHDConfig string // /etc/ssh/sshd_config
	PolicyPath string // /etc/opkssh/policies.yaml
	CacheDir   string // /var/cache/opkssh
	LogFile    string // /var/log/opkssh/verify.log
	Timeout    time.Duration
	SELinuxDir string // /sys/fs/selinux
}

type doctor struct {
	o           Options
	findings    []Finding
	verifyUser  *user.User
	staleFor    time.Duration // verify's --stale-for; 0 means verifier.DefaultStaleFor
	policyOwner int           // verify's --policy-owner: trusted besides root
	noCache     bool          // verify runs with --cache-dir "": keys are kept in memory only
}

func (d *doctor) add(level, check, msg, fix string) {
	d.findings = append(d.findings, Finding{level, check, msg, fix})
}

// Run performs every check.
func Run(ctx context.Context, o Options) []Finding {
	if o.SSHD == "" {
		o.SSHD = "/usr/sbin/sshd"
	}
	if o.SSHDConfig == "" {
		o.SSHDConfig = "/etc/ssh/sshd_config"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.SELinuxDir == "" {
		o.SELinuxDir = "/sys/fs/selinux"
	}
	d := &doctor{o: o}
	binary, args := d.sshd()
	if binary != "" {
		d.binary(binary)
		d.applyVerifyFlags(args)
	}
	if d.o.PolicyPath == "" {
		d.o.PolicyPath = serverconfig.PolicyPath
	}
	if d.o.CacheDir == "" {
		d.o.CacheDir = serverconfig.CacheDir
	}
	if d.o.LogFile == "" {
		d.o.LogFile = serverconfig.LogFile
	}
	if pol := d.policy(); pol != nil {
		d.providers(ctx, pol)
	}
	d.cacheDir()
	d.logDest()
	d.selinux()
	return d.findings
}

// sshd reads the effective configuration and returns opkssh's path and arguments if sshd runs it.
func (d *doctor) sshd() (string, []string) {
	out, err := exec.Command(d.o.SSHD, "-T", "-f", d.o.SSHDConfig, "-C", "user=root,host=localhost,addr=127.0.0.1").CombinedOutput()
	if err != nil {
		d.add(Fail, "sshd", fmt.Sprintf("%s -T failed: %v: %s", d.o.SSHD, err, firstLine(out)), "fix the sshd configuration until \"sshd -t\" passes (and run doctor as root)")
		return "", nil
	}
	conf := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if _, seen := conf[k]; !seen {
			conf[k] = v
		}
	}
	if conf["pubkeyauthentication"] == "no" {
		d.add(Fail, "sshd", "PubkeyAuthentication is off: certificates are never offered to opkssh", "set PubkeyAuthentication yes")
	}
	if n, err := strconv.Atoi(conf["maxauthtries"]); err == nil && n < 3 {
		d.add(Warn, "sshd", fmt.Sprintf("MaxAuthTries is %d: a client with several keys may be cut off before it offers its opkssh certificate", n), "raise MaxAuthTries to 6 (the default)")
	}
	akc := conf["authorizedkeyscommand"]
	fields := strings.Fields(akc)
	switch {
	case akc == "" || akc == "none":
		d.add(Fail, "sshd", "no AuthorizedKeysCommand: sshd never asks opkssh", "run \"opkssh server install\" (or add examples/sshd/opkssh.conf to /etc/ssh/sshd_config.d/)")
		return "", nil
	case len(fields) >= 2 && filepath.Base(fields[0]) == "opkssh" && fields[1] == "verify" && !filepath.IsAbs(fields[0]):
		d.add(Fail, "sshd", fmt.Sprintf("AuthorizedKeysCommand %q names opkssh by a relative path: sshd runs only an absolute path", akc),
			"use the full path, e.g. AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t")
		return "", nil
	case len(fields) < 2 || filepath.Base(fields[0]) != "opkssh" || fields[1] != "verify":
		d.add(Fail, "sshd", fmt.Sprintf("a conflicting AuthorizedKeysCommand is in effect: %q (sshd runs only one; the first one read wins)", akc),
			"remove the other AuthorizedKeysCommand, or put opkssh's drop-in before it (sshd_config.d/ files are read in name order)")
		return "", nil
	}
	d.add(OK, "sshd", "AuthorizedKeysCommand is "+akc, "")
	switch u := conf["authorizedkeyscommanduser"]; u {
	case "", "none":
		d.add(Fail, "sshd", "no AuthorizedKeysCommandUser: sshd refuses to run the command", "set AuthorizedKeysCommandUser opkssh")
	case "root":
		d.add(Warn, "sshd", "verify runs as root", "set AuthorizedKeysCommandUser to an unprivileged account (opkssh server install creates \"opkssh\")")
	default:
		if uu, err := user.Lookup(u); err != nil {
			d.add(Fail, "sshd", fmt.Sprintf("AuthorizedKeysCommandUser %s does not exist", u), "create it (useradd --system "+u+") or run opkssh server install")
		} else {
			d.verifyUser = uu
			d.add(OK, "sshd", "verify runs as "+u, "")
		}
	}
	if !strings.Contains(akc, "%k") || !strings.Contains(akc, "%t") || !strings.Contains(akc, "%u") {
		d.add(Fail, "sshd", "AuthorizedKeysCommand does not pass %u %k %t", "use: AuthorizedKeysCommand "+fields[0]+" verify %u %k %t")
	}
	if words, err := argv.Split(akc); err == nil && len(words) >= 2 {
		return words[0], words[2:] // quoted arguments, e.g. install's --chain "COMMAND ARGS"
	}
	return fields[0], fields[2:]
}

// applyVerifyFlags reads sshd's command line with verify's own flag set, so that the paths and
// owners checked are the ones verify uses.
func (d *doctor) applyVerifyFlags(args []string) {
	v, _, err := serverconfig.ParseVerify(args)
	if err != nil {
		d.add(Fail, "sshd", "verify cannot run with this AuthorizedKeysCommand: "+err.Error(), "use: AuthorizedKeysCommand /usr/local/bin/opkssh verify %u %k %t")
		return
	}
	set := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		set[name] = true
	}
	if set["--policy"] || d.o.PolicyPath == "" {
		d.o.PolicyPath = v.PolicyPath
	}
	if set["--cache-dir"] || d.o.CacheDir == "" {
		d.o.CacheDir = v.CacheDir
		d.noCache = v.CacheDir == ""
	}
	if set["--log-file"] {
		d.o.LogFile = v.LogFile
	}
	if set["--stale-for"] && v.StaleFor > 0 {
		d.staleFor = v.StaleFor
	}
	if v.PolicyOwner != 0 {
		d.policyOwner = v.PolicyOwner
		d.add(Warn, "sshd", fmt.Sprintf("AuthorizedKeysCommand passes --policy-owner %d: verify then trusts policy files that uid can write, so that account can let anyone log in as anyone", v.PolicyOwner),
			"remove --policy-owner from AuthorizedKeysCommand (it is for demos and tests) and give the policy files to root")
	}
}

// binary checks what sshd itself requires of an AuthorizedKeysCommand.
func (d *doctor) binary(path string) {
	bad := false
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			fix := ""
			if p == path {
				fix = "install it: opkssh server install"
			}
			d.add(Fail, "binary", fmt.Sprintf("%s: %v", p, err), fix)
			return
		}
		uid, _, ok := fileowner.Of(fi)
		if !ok || uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			fix := fmt.Sprintf("chown root:root %s && chmod go-w %s", p, p)
			if p != path {
				fix = parentFix(p, path, fi)
			}
			d.add(Fail, "binary", fmt.Sprintf("%s is owned by %s with mode %04o: sshd refuses the command unless it and every parent directory are root-owned and not writable by group or others", p, ownerText(uid, ok), fi.Mode().Perm()), fix)
			bad = true
		}
		if p == "/" || p == "." {
			break
		}
	}
	if !bad {
		d.add(OK, "binary", path+" and its directories are root-owned and not group/other-writable", "")
	}
}

func (d *doctor) policy() *policy.Policy {
	pol, err := policy.Load(serverconfig.Verify{PolicyPath: d.o.PolicyPath, PolicyOwner: d.policyOwner}.PolicyOptions())
	if err != nil {
		d.add(Fail, "policy", "every login is denied: "+err.Error(), "fix the file; \"opkssh policy check\" shows every problem")
		return nil
	}
	d.add(OK, "policy", fmt.Sprintf("%s loads: %s, %s, %s", strings.Join(pol.Files, ", "), words.Count(len(pol.Providers), "provider", "providers"), words.Count(len(pol.Rules), "rule", "rules"), words.Count(len(pol.Deny), "deny entry", "deny entries")), "")
	for _, name := range slices.Sorted(maps.Keys(pol.Broken)) {
		err := pol.Broken[name]
		d.add(Fail, "policy", fmt.Sprintf("provider %s is disabled, its users are denied: %v", name, err), "fix its entry under providers:")
	}
	if len(pol.Rules) == 0 {
		d.add(Warn, "policy", "no rules: nobody can log in yet", "opkssh add PRINCIPAL IDENTITY PROVIDER")
	}
	return pol
}

func (d *doctor) providers(ctx context.Context, pol *policy.Policy) {
	entries, _ := verifier.ReadCacheDir(d.o.CacheDir)
	cached := map[string]verifier.CacheEntry{}
	for _, e := range entries {
		cached[e.Issuer] = e
	}
	for _, name := range slices.Sorted(maps.Keys(pol.Providers)) {
		p := pol.Providers[name]
		check := "provider " + p.Name
		if err := (verifier.Fetcher{}).CheckFiles(p); err != nil {
			fix := "point jwks_file at the OP's JWKS document and ca_file at a PEM file"
			if errors.Is(err, verifier.ErrUnsafeFile) {
				fix = "make the file and every directory above it owned by root and writable by root only"
			}
			d.add(Fail, check, fmt.Sprintf("provider %s is disabled, its users are denied: %v", p.Name, err), fix)
			continue
		}
		if p.JWKSFile != "" {
			d.add(OK, check, "pinned keys in "+p.JWKSFile, "")
			continue
		}
		for _, iss := range concreteIssuers(p) {
			q := *p
			q.Issuer = iss
			d.fetch(ctx, check, &q, cached)
		}
	}
}

// concreteIssuers are the issuers whose keys verify fetches for p: one per tenant for a
// multi-tenant template, p's own otherwise.
func concreteIssuers(p *policy.Provider) []string {
	if !strings.Contains(p.Issuer, policy.TenantPlaceholder) {
		return []string{p.Issuer}
	}
	var out []string
	for _, t := range p.Tenants {
		out = append(out, strings.Replace(p.Issuer, policy.TenantPlaceholder, t, 1))
	}
	return out
}

// fetch runs verify's discovery and JWKS requests for one issuer and names what failed: a
// discovery document at the wrong place (a wrong issuer string) is not an unreachable OP.
func (d *doctor) fetch(ctx context.Context, check string, p *policy.Provider, cached map[string]verifier.CacheEntry) {
	fetched, err := (verifier.Fetcher{Timeout: d.o.Timeout}).Fetch(ctx, p)
	if err == nil {
		d.add(OK, check, fmt.Sprintf("%s reachable, JWKS at %s", p.Issuer, fetched.JWKSURI), "")
		if skipped := verifier.SkippedKeys(fetched.JWKS); len(skipped) > 0 {
			d.add(OK, check, fmt.Sprintf("%s: verify leaves out %s it cannot use for signatures: %s", p.Issuer, words.Count(len(skipped), "key", "keys"), strings.Join(skipped, "; ")), "")
		}
		d.clock(check, fetched)
		return
	}
	switch verifier.FetchErrorKind(err) {
	case verifier.FetchIssuerMismatch:
		d.add(Fail, check, fmt.Sprintf("%s: %v", p.Issuer, err), "set issuer to the exact value of the OP's discovery document (tokens carry the same string)")
		return
	case verifier.FetchHTTPStatus:
		d.add(Fail, check, fmt.Sprintf("%s answers, but not with a discovery document at %s: %v", p.Issuer, verifier.DiscoveryURL(p.Issuer), err),
			"check the issuer string: it must be the OP's issuer exactly, as in its tokens' iss")
		return
	case verifier.FetchRedirect, verifier.FetchBadDocument:
		d.add(Fail, check, fmt.Sprintf("%s: %v", p.Issuer, err), "check the issuer string and the OP's discovery document")
		return
	}
	// verify refuses cached keys older than --stale-for.
	staleFor := cmp.Or(d.staleFor, verifier.DefaultStaleFor)
	e, ok := cached[p.Issuer]
	switch {
	case ok && !e.FetchedAt.IsZero() && time.Since(e.FetchedAt) < staleFor:
		d.add(Warn, check, fmt.Sprintf("%s is unreachable (%v); logins use cached keys fetched %s", p.Issuer, err, e.FetchedAt.Format(time.RFC3339)), "check the network path to the OP")
	case ok && !e.FetchedAt.IsZero():
		d.add(Fail, check, fmt.Sprintf("%s is unreachable and its cached keys, fetched %s, are older than the stale window (%s): its users are denied: %v", p.Issuer, e.FetchedAt.Format(time.RFC3339), staleFor, err),
			"restore the network path to the OP, or pin its keys with jwks_file")
	default:
		d.add(Fail, check, fmt.Sprintf("%s is unreachable and no keys are cached: %v", p.Issuer, err), "check DNS, proxy-free network access to the OP, and ca_file for a private CA")
	}
}

// clock compares our clock, when the OP's keys were fetched, with the Date the OP sent with them:
// iat and expiry checks depend on it. The request is verify's own (same client, ca_file, no proxy).
func (d *doctor) clock(check string, f *verifier.Fetched) {
	if f.ServerDate.IsZero() {
		return
	}
	skew := f.FetchedAt.Sub(f.ServerDate).Round(time.Second)
	if skew < -time.Minute || skew > time.Minute {
		d.add(Warn, check, fmt.Sprintf("this clock differs from the OP's by %s: fresh tokens may look issued in the future or expired", skew), "synchronise the clock (systemd-timesyncd, chrony)")
	}
}

func (d *doctor) cacheDir() {
	if d.noCache {
		d.add(Warn, "cache", `verify runs with --cache-dir "": it fetches keys on every login and cannot ride out an OP outage`,
			"drop --cache-dir \"\" from AuthorizedKeysCommand (the default is "+verifier.DefaultCacheDir+")")
		return
	}
	fi, err := os.Stat(d.o.CacheDir)
	if err == nil && !fi.IsDir() {
		err = errors.New("not a directory")
	}
	if err != nil {
		d.add(Warn, "cache", fmt.Sprintf("%s: %v: verify fetches keys on every login and cannot ride out an OP outage", d.o.CacheDir, err),
			"create it: install -d -m 0700 -o "+d.userName()+" "+d.o.CacheDir)
		return
	}
	uid, _, ok := fileowner.Of(fi)
	if !ok || fi.Mode().Perm()&0o077 != 0 || (d.verifyUser != nil && strconv.Itoa(uid) != d.verifyUser.Uid) {
		d.add(Warn, "cache", fmt.Sprintf("%s is owned by %s with mode %04o: verify uses it only if the verify user owns it and it is not group/other-writable", d.o.CacheDir, ownerText(uid, ok), fi.Mode().Perm()),
			fmt.Sprintf("chown %s %s && chmod 0700 %s", d.userName(), d.o.CacheDir, d.o.CacheDir))
		return
	}
	d.add(OK, "cache", d.o.CacheDir+" is the verify user's", "")
}

func (d *doctor) logDest() {
	dir := filepath.Dir(d.o.LogFile)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		what := "does not exist"
		if err == nil {
			what = "is not a directory"
		}
		d.add(Warn, "log", fmt.Sprintf("%s %s: decisions go only to syslog and stderr", dir, what), "install -d -m 0750 -o "+d.userName()+" "+dir)
		return
	}
	if d.verifyUser != nil && !writableBy(fi, d.verifyUser) {
		if lf, err := os.Stat(d.o.LogFile); err != nil || !writableBy(lf, d.verifyUser) {
			d.add(Warn, "log", fmt.Sprintf("the verify user %s cannot write %s", d.verifyUser.Username, d.o.LogFile), "chown "+d.verifyUser.Username+" "+dir)
			return
		}
	}
	d.add(OK, "log", "decisions are logged to "+d.o.LogFile, "")
}

func (d *doctor) selinux() {
	data, err := os.ReadFile(filepath.Join(d.o.SELinuxDir, "enforce"))
	if err != nil {
		return
	}
	if strings.TrimSpace(string(data)) == "1" {
		d.add(Warn, "selinux", "SELinux is enforcing: sshd's domain may be denied network access to the OP or the cache directory", "check \"ausearch -m avc -c opkssh\" after a failed login")
		return
	}
	d.add(OK, "selinux", "SELinux is permissive", "")
}

func (d *doctor) userName() string {
	if d.verifyUser != nil {
		return d.verifyUser.Username
	}
	return "opkssh"
}

func writableBy(fi os.FileInfo, u *user.User) bool {
	fuid, fgid, ok := fileowner.Of(fi)
	if !ok {
		return false // no numeric owner (not Unix): cannot tell
	}
	m := fi.Mode().Perm()
	if m&0o002 != 0 || (strconv.Itoa(fuid) == u.Uid && m&0o200 != 0) {
		return true
	}
	return m&0o020 != 0 && slices.Contains(groupsOf(u), strconv.Itoa(fgid))
}

// groupsOf lists the user's primary and supplementary group IDs (a variable for the tests).
var groupsOf = func(u *user.User) []string {
	ids, err := u.GroupIds()
	if err != nil {
		return []string{u.Gid}
	}
	return append(ids, u.Gid)
}

// ownerText names a file's owner for a message.
func ownerText(uid int, known bool) string {
	if !known {
		return "an unknown owner"
	}
	return fmt.Sprintf("uid %d", uid)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// Print writes the findings for a person; it reports whether any failed.
func Print(w io.Writer, findings []Finding) (failed bool) {
	for _, f := range findings {
		fmt.Fprintf(w, "[%-4s] %-10s %s\n", f.Level, f.Check, f.Msg)
		if f.Fix != "" {
			fmt.Fprintf(w, "       %-10s fix: %s\n", "", f.Fix)
		}
		if f.Level == Fail {
			failed = true
		}
	}
	return failed
}
