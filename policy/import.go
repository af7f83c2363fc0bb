package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/opkssh-team/opkssh/internal/atomicfile"
	"github.com/opkssh-team/opkssh/internal/yamlfmt"
)

// ErrNothingToImport is returned by Import when no provider row could be
// converted; ImportResult.Skipped says why.
var ErrNothingToImport = errors.New("nothing to import")

// ImportOptions names the files to import.
type ImportOptions struct {
	ProvidersFile string // e.g. /etc/opk/providers
	AuthIDFile    string // e.g. /etc/opk/auth_id
	// RequireEmailVerified keeps opkssh's default of matching email and
	// email_domain identities only when the token says email_verified: true.
	// The previous tool did not check email_verified, so by default Import
	// writes require_email_verified: false on the providers that have email
	// identities, to keep its decisions.
	RequireEmailVerified bool
	Now                  time.Time // the import time written in the header
}

// ImportResult is a converted policy and what could not be converted.
type ImportResult struct {
	YAML       []byte // a policies.yaml that passes Parse
	Providers  int
	Rules      int
	Identities int
	// Skipped lists the rows that were left out, or converted only in part,
	// and why. The YAML header lists them too.
	Skipped []ImportIssue
	// Notes lists rows converted with a narrower meaning than before, e.g.
	// an expiration of "never" that became 720h.
	Notes []ImportIssue
}

// ImportIssue is a row of an imported file and what became of it.
type ImportIssue struct {
	Pos Position
	Row string // the row's columns, for the reader to recognize it
	Msg string
}

func (i ImportIssue) String() string { return fmt.Sprintf("%s: %s: %s", i.Pos, i.Row, i.Msg) }

// Import converts the configuration of the other OpenPubkey SSH
// implementation ("the previous tool") into a policies.yaml that makes the
// same decisions, as far as it can:
//
//	/etc/opk/providers   issuer client_id expiration
//	/etc/opk/auth_id     principal identity issuer
//
// Providers: rows with the same issuer become one provider with several
// client_ids. Expirations 12h, 24h and 48h stay, 1week becomes 168h, oidc
// stays; oidc_refreshed (also spelled oidc-refreshed) becomes oidc and never
// becomes 720h, the longest opkssh allows, both with a note: the login ends
// sooner than before. Names come from the issuer: google, azure, gitlab and
// github for the well-known ones (the previous tool's short names),
// otherwise the host name with each run of other characters turned into
// '-', and a suffix -2, -3... when taken.
//
// auth_id rows become one rule per principal and provider, in the order of
// their first row:
//
//	alice@example.com (contains '@')         email
//	anything else without a prefix           sub
//	oidc:groups:VALUE                        group
//	oidc:sub:VALUE                           sub
//	oidc:CLAIM:VALUE ("CLAIM" may be quoted) claim
//	oidc-match-end:email:@DOMAIN             email_domain
//	repo:SUB without * ? [ \                 sub (a glob without wildcards
//	                                         matches exactly the subject)
//
// Every other row is left out and reported: a suffix that is not '@' and a
// domain (it matches lookalike domains), globs, a claim value containing ':'
// or '"', a dotted claim name (opkssh would follow it into nested claims),
// oidc:email: (case-sensitive before), claims every token carries,
// principals opkssh does not accept, issuers not in the providers file (the
// previous tool never matched them either) and rows without three columns.
//
// Where the meaning still differs, the imported policy is the narrower one.
// The previous tool compared a plain identity with the token's email and
// sub alike; opkssh compares an address only with email and anything else
// only with sub. It folded case with Unicode rules, opkssh folds ASCII
// only. Deny lists and policy plugins of its config.yml
// and policy.d, and the users' ~/.opk/auth_id files, are not read.
func Import(opts ImportOptions) (ImportResult, error) {
	provRows, err := readTable("providers", opts.ProvidersFile)
	if err != nil {
		return ImportResult{}, err
	}
	authRows, err := readTable("auth_id", opts.AuthIDFile)
	if err != nil {
		return ImportResult{}, err
	}
	im := &importer{opts: opts, byIssuer: map[string]*importedProvider{}, skippedIssuer: map[string]Position{}, taken: map[string]bool{}}
	for _, row := range provRows {
		im.provider(row)
	}
	if len(im.providers) == 0 {
		return ImportResult{Skipped: im.skipped}, fmt.Errorf("%w: no provider row of %s could be converted", ErrNothingToImport, opts.ProvidersFile)
	}
	for _, row := range authRows {
		im.authID(row)
	}
	data, err := im.encode()
	if err != nil {
		return ImportResult{}, err
	}
	if _, err := Parse("imported policy", data); err != nil {
		return ImportResult{}, fmt.Errorf("the imported policy does not load, which is a bug in opkssh policy import; please report it:\n%w", err)
	}
	res := ImportResult{YAML: data, Providers: len(im.providers), Rules: len(im.rules), Skipped: im.skipped, Notes: im.notes}
	for _, r := range im.rules {
		res.Identities += len(r.ids)
	}
	return res, nil
}

// tableRow is one non-empty line of a table file.
type tableRow struct {
	pos    Position
	fields []string
}

// text shows the row in messages and comments: its columns, control
// characters replaced.
func (r tableRow) text() string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return '?'
		}
		return c
	}, strings.Join(r.fields, " "))
}

// readTable reads one of the previous tool's files, named what in errors.
// They are tables: one row per line, columns separated by white space (a
// backslash makes the next character part of the column), everything from
// the first '#' on a line a comment, blank lines ignored.
func readTable(what, path string) ([]tableRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the %s file: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("the %s file: %w", what, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than 4 MiB; that is not a configuration file", path)
	}
	var rows []tableRow
	for i, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if fields := splitFields(line); len(fields) > 0 {
			rows = append(rows, tableRow{Position{path, i + 1}, fields})
		}
	}
	return rows, nil
}

// splitFields splits a line at white space; a backslash makes the next
// character, white space or backslash, part of the field.
func splitFields(line string) []string {
	var fields []string
	var cur strings.Builder
	inField, escaped := false, false
	for _, c := range line {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\':
			escaped, inField = true, true
		case unicode.IsSpace(c):
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			cur.WriteRune(c)
			inField = true
		}
	}
	if inField && cur.Len() > 0 {
		fields = append(fields, cur.String())
	}
	return fields
}

type importer struct {
	opts          ImportOptions
	providers     []*importedProvider
	byIssuer      map[string]*importedProvider
	skippedIssuer map[string]Position // issuers of provider rows left out
	taken         map[string]bool     // provider names
	rules         []*importedRule
	skipped       []ImportIssue
	notes         []ImportIssue
}

type importedProvider struct {
	name, issuer, expiration string
	clientIDs                []string
	pos                      Position
	expNote                  string // what the expiration means now, when it changed
	hasEmail                 bool   // an email or email_domain identity uses it
}

type importedRule struct {
	principal string
	provider  *importedProvider
	ids       []importedID
}

type importedID struct {
	id      Identity
	comment string
}

func (im *importer) skip(row tableRow, format string, args ...any) {
	im.skipped = append(im.skipped, ImportIssue{row.pos, row.text(), fmt.Sprintf(format, args...)})
}

func (im *importer) note(row tableRow, msg string) {
	im.notes = append(im.notes, ImportIssue{row.pos, row.text(), msg})
}

func (im *importer) provider(row tableRow) {
	if len(row.fields) != 3 {
		im.skip(row, "expected 3 columns (issuer client_id expiration), found %d; the previous tool ignored this row too", len(row.fields))
		return
	}
	iss, clientID, exp := row.fields[0], row.fields[1], row.fields[2]
	if msg := cleanValue(iss, clientID); msg != "" {
		im.skip(row, "%s", msg)
		return
	}
	if msg := checkIssuer(iss); msg != "" {
		im.skipped = append(im.skipped, ImportIssue{row.pos, row.text(), "issuer " + msg})
		im.skipIssuer(iss, row.pos)
		return
	}
	expiration, note, ok := convertExpiration(exp)
	if !ok {
		im.skip(row, "unknown expiration %q (the previous tool knew 12h, 24h, 48h, 1week, oidc, oidc_refreshed and never, and refused every login with another)", exp)
		im.skipIssuer(iss, row.pos)
		return
	}
	if p := im.byIssuer[iss]; p != nil {
		if !slices.Contains(p.clientIDs, clientID) {
			p.clientIDs = append(p.clientIDs, clientID)
		}
		if expiration != p.expiration {
			im.skip(row, "client ID %s added to provider %q (%s), but not its expiration %s: a provider has one expiration, and that one says %s", clientID, p.name, p.pos, exp, p.expiration)
		}
		return
	}
	p := &importedProvider{name: im.providerName(iss), issuer: iss, expiration: expiration, clientIDs: []string{clientID}, pos: row.pos}
	if note != "" {
		p.expNote = fmt.Sprintf("was %s: %s", exp, note)
		im.note(row, fmt.Sprintf("expiration %s became %s: %s", exp, expiration, note))
	}
	im.providers = append(im.providers, p)
	im.byIssuer[iss] = p
}

func (im *importer) skipIssuer(iss string, pos Position) {
	if _, ok := im.skippedIssuer[iss]; !ok {
		im.skippedIssuer[iss] = pos
	}
}

// convertExpiration maps an expiration of the previous tool to ours; note
// says how the meaning changed.
func convertExpiration(s string) (exp, note string, ok bool) {
	switch s {
	case "12h", "24h", "48h", "oidc":
		return s, "", true
	case "1week":
		return "168h", "", true
	case "oidc_refreshed", "oidc-refreshed":
		return "oidc", "the previous tool also accepted a refreshed ID token once the first had expired; opkssh checks the exp of the token in the certificate, so users log in again when it expires", true
	case "never":
		return "720h", "the previous tool never ended these logins; 720h (30 days after login) is the longest opkssh allows", true
	}
	return "", "", false
}

// wellKnownIssuers gives the providers the previous tool had short names
// for the same names.
var wellKnownIssuers = []struct {
	issuer string
	prefix bool
	name   string
}{
	{"https://accounts.google.com", false, "google"},
	{"https://login.microsoftonline.com/", true, "azure"},
	{"https://gitlab.com", false, "gitlab"},
	{"https://token.actions.githubusercontent.com", false, "github"},
}

// providerName names the provider of issuer iss, which checkIssuer accepted.
func (im *importer) providerName(iss string) string {
	base := ""
	for _, w := range wellKnownIssuers {
		if iss == w.issuer || w.prefix && strings.HasPrefix(iss, w.issuer) {
			base = w.name
			break
		}
	}
	if base == "" {
		base = "provider"
		if u, err := url.Parse(iss); err == nil {
			if h := sanitizeName(u.Hostname()); h != "" {
				base = h
			}
		}
	}
	name := base
	for n := 2; im.taken[name]; n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	im.taken[name] = true
	return name
}

// sanitizeName makes s a provider name: lower case, each run of characters
// other than [a-z0-9_] becomes one '-', no '-' or '_' at either end.
func sanitizeName(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		} else {
			dash = true
		}
	}
	return strings.Trim(b.String(), "_")
}

func (im *importer) authID(row tableRow) {
	if len(row.fields) != 3 {
		im.skip(row, "expected 3 columns (principal identity issuer), found %d; the previous tool ignored this row too", len(row.fields))
		return
	}
	principal, ident, iss := row.fields[0], row.fields[1], row.fields[2]
	if !ValidPrincipal(principal) {
		im.skip(row, "%q is not a user name opkssh accepts (1-32 characters from A-Z a-z 0-9 _ . -, not starting with '-' or '.')", principal)
		return
	}
	prov := im.byIssuer[iss]
	if prov == nil {
		im.skip(row, "%s", im.unknownIssuer(iss))
		return
	}
	id, problem := convertIdentity(ident)
	if problem == "" {
		if problem = cleanValue(id.Value, id.ClaimName); problem == "" {
			problem = checkIdentity(id)
		}
	}
	if problem != "" {
		im.skip(row, "identity %s", problem)
		return
	}
	if id.Kind == KindEmail || id.Kind == KindEmailDomain {
		prov.hasEmail = true
	}
	rule := im.rule(principal, prov)
	if slices.ContainsFunc(rule.ids, func(x importedID) bool { return x.id.sameAs(id) }) {
		return // a repeated row allows nothing more
	}
	comment := fmt.Sprintf("%s line %d", filepath.Base(row.pos.File), row.pos.Line)
	if strings.HasPrefix(ident, "oidc") { // a form policies.yaml writes differently
		comment += ": " + ident
	}
	rule.ids = append(rule.ids, importedID{id, comment})
}

// unknownIssuer says why no provider has issuer iss.
func (im *importer) unknownIssuer(iss string) string {
	if pos, ok := im.skippedIssuer[iss]; ok {
		return fmt.Sprintf("its provider (%s) was not converted", pos)
	}
	for _, alt := range []string{iss + "/", strings.TrimSuffix(iss, "/")} {
		if p := im.byIssuer[alt]; p != nil && alt != iss {
			return fmt.Sprintf("issuer %q is not in %s, which has %q (%s); both tools compare issuers exactly, so this row never matched", iss, im.opts.ProvidersFile, alt, p.pos)
		}
	}
	return fmt.Sprintf("issuer %q is not in %s; the previous tool never matched this row either", iss, im.opts.ProvidersFile)
}

func (im *importer) rule(principal string, prov *importedProvider) *importedRule {
	for _, r := range im.rules {
		if r.principal == principal && r.provider == prov {
			return r
		}
	}
	r := &importedRule{principal: principal, provider: prov}
	im.rules = append(im.rules, r)
	return r
}

// convertIdentity converts an identity column; problem, when set, is why it
// cannot be.
func convertIdentity(s string) (id Identity, problem string) {
	const claimPrefix, suffixPrefix, repoPrefix = "oidc:", "oidc-match-end:email:", "repo:"
	switch {
	case strings.HasPrefix(s, claimPrefix):
		return convertClaim(s, s[len(claimPrefix):])
	case strings.HasPrefix(s, suffixPrefix):
		suffix := s[len(suffixPrefix):]
		domain, isDomain := strings.CutPrefix(suffix, "@")
		if !isDomain || checkDomain(domain) != "" {
			return id, fmt.Sprintf("%s matches every address that ends in %q, including lookalike domains, which opkssh does not do: write oidc-match-end:email:@example.com for the addresses at one domain, or list the addresses", s, suffix)
		}
		return Identity{Kind: KindEmailDomain, Value: domain}, ""
	case strings.HasPrefix(s, "oidc-match-end:"):
		return id, fmt.Sprintf("%s: only oidc-match-end:email: is understood (the previous tool compared this text with the token's email and sub literally)", s)
	case strings.HasPrefix(s, repoPrefix):
		if strings.ContainsAny(s, `*?[\`) {
			return id, fmt.Sprintf("%s is a glob pattern, which policies.yaml does not have: list each subject (sub:repo:org/app:ref:refs/heads/main), or match a claim such as repository (claim:repository=org/app)", s)
		}
		return Identity{Kind: KindSub, Value: s}, ""
	case strings.Contains(s, "@"):
		return Identity{Kind: KindEmail, Value: s}, ""
	}
	return Identity{Kind: KindSub, Value: s}, ""
}

// convertClaim converts oidc:CLAIM:VALUE, rest being CLAIM:VALUE. CLAIM may
// be in double quotes, so that it can contain ':' (a URL).
func convertClaim(s, rest string) (id Identity, problem string) {
	var parts []string
	start, quoted := 0, false
	for i, c := range rest {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ':' && !quoted:
			parts = append(parts, rest[start:i])
			start = i + 1
		}
	}
	parts = append(parts, rest[start:])
	if len(parts) > 2 {
		return id, fmt.Sprintf("%s has a ':' in its value; the previous tool matched only the part after the last ':' (%q): write the row by hand", s, parts[len(parts)-1])
	}
	name, value := strings.Trim(parts[0], `"`), ""
	if len(parts) == 2 {
		value = parts[1]
	}
	switch {
	case name == "" || value == "":
		return id, fmt.Sprintf("%s is not of the form oidc:CLAIM:VALUE; the previous tool never matched it", s)
	case strings.Contains(name, `"`) || strings.Contains(value, `"`):
		return id, fmt.Sprintf("%s has quotes that are not around the whole claim name; write the row by hand", s)
	}
	switch name {
	case "groups":
		return Identity{Kind: KindGroup, Value: value}, ""
	case "sub":
		return Identity{Kind: KindSub, Value: value}, ""
	case "email":
		return id, fmt.Sprintf("%s matched the address with its exact case, and an email identity ignores ASCII case; write the address alone (%s) if that is what you meant", s, value)
	}
	if strings.Contains(name, ".") && !strings.Contains(name, "://") {
		return id, fmt.Sprintf("%s: the previous tool looked only for a top-level claim named %q, but opkssh also follows the dots into nested claims, which may let in more people; if that is what you meant, add claim:%s=%s by hand", s, name, name, value)
	}
	return Identity{Kind: KindClaim, ClaimName: name, Value: value}, ""
}

// cleanValue returns what is wrong with values that go into policies.yaml
// as they are, or "".
func cleanValue(values ...string) string {
	for _, v := range values {
		if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return fmt.Sprintf("%q contains a control character or invalid UTF-8", v)
		}
		if strings.TrimSpace(v) != v {
			return fmt.Sprintf("%q has leading or trailing spaces", v)
		}
	}
	return ""
}

// encode writes the policy as YAML, with comments saying where each entry
// came from.
func (im *importer) encode() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	provs := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	root.Content = append(root.Content, str("version"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "1"}, str("providers"), provs)
	for _, p := range im.providers {
		key := str(p.name)
		key.LineComment = fmt.Sprintf("# %s line %d", filepath.Base(im.opts.ProvidersFile), p.pos.Line)
		ids := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, c := range p.clientIDs {
			ids.Content = append(ids.Content, str(c))
		}
		exp := str(p.expiration)
		if p.expNote != "" {
			exp.LineComment = "# " + p.expNote
		}
		block := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
			str("issuer"), str(p.issuer), str("client_ids"), ids, str("expiration"), exp,
		}}
		if p.hasEmail && !im.opts.RequireEmailVerified {
			v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false",
				LineComment: "# as before; set true if this OP always sends email_verified (Microsoft Entra ID does not)"}
			block.Content = append(block.Content, str("require_email_verified"), v)
		}
		provs.Content = append(provs.Content, key, block)
	}
	if len(im.rules) > 0 {
		rules := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, r := range im.rules {
			ids := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for _, x := range r.ids {
				n := identityNode(x.id)
				n.Content[1].LineComment = "# " + x.comment
				ids.Content = append(ids.Content, n)
			}
			rules.Content = append(rules.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
				str("principals"), {Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{str(r.principal)}},
				str("provider"), str(r.provider.name),
				str("identities"), ids,
			}})
		}
		root.Content = append(root.Content, str("rules"), rules)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: im.header(), Content: []*yaml.Node{root}}
	data, err := yamlfmt.Encode(doc)
	if err != nil {
		return nil, err
	}
	// A blank line before each section, for the eye. Values are single
	// line, so a line starting with a key is the key.
	for _, key := range []string{"providers:", "rules:"} {
		data = bytes.Replace(data, []byte("\n"+key+"\n"), []byte("\n\n"+key+"\n"), 1)
	}
	return data, nil
}

// header says where the policy came from and what was left out.
func (im *importer) header() string {
	lines := []string{`Imported by "opkssh policy import"`}
	if !im.opts.Now.IsZero() {
		lines[0] += " at " + im.opts.Now.UTC().Format(time.RFC3339)
	}
	lines = append(lines, "from the providers file "+im.opts.ProvidersFile, "and the auth_id file "+im.opts.AuthIDFile+".",
		"The comment on each entry names the line it came from.",
		"Review this file, install it and run: opkssh policy check")
	if len(im.skipped) > 0 {
		lines = append(lines, "", fmt.Sprintf("Not converted (%d):", len(im.skipped)))
		for _, s := range im.skipped {
			lines = append(lines, "  "+s.String())
		}
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight("# "+l, " ")
	}
	return strings.Join(lines, "\n")
}

// WriteNewFile creates path with data, mode 0644, all at once (atomicfile): an existing file is
// never replaced.
func WriteNewFile(path string, data []byte) error {
	err := atomicfile.WriteWith(path, data, atomicfile.Options{Mode: 0o644, NoReplace: true})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists and is never overwritten: name a new file, or remove it first", path)
	}
	return err
}
