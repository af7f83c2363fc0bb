package policy

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Parse parses and validates the contents of one policy file. file names the
// file in positions and error messages; Parse does not touch the file
// system, so it makes none of Load's ownership checks.
func Parse(file string, data []byte) (*Policy, error) {
	errs := &errList{}
	frag := parseFile(file, data, errs)
	return assemble([]*fragment{frag}, errs)
}

var (
	identityKeys = []string{KindEmail, KindEmailDomain, KindSub, KindGroup, KindClaim, KindRepository, KindProjectPath}
	providerKeys = []string{"kind", "issuer", "client_ids", "expiration", "ca_file", "jwks_file", "require_email_verified", "groups_claim", "tenants", "require_gq"}
	ruleKeys     = []string{"principals", "principals_from", "principals_allowed", "provider", "identities", "require", "options", "comment"}
)

// parseFile parses one file into a fragment, reporting problems to errs.
func parseFile(file string, data []byte, errs *errList) *fragment {
	frag := &fragment{file: file}
	if len(data) > maxFileSize {
		errs.add(Position{file, 1}, "", "file is larger than 4 MiB; split it into policies.d/ drop-ins or use group identities")
		return frag
	}
	doc, e := decodeOne(file, data)
	if e != nil {
		errs.add(e.Pos, e.Field, "%s", e.Msg)
		return frag
	}
	p := &parser{file: file, errs: errs, frag: frag}
	p.document(doc)
	return frag
}

// decodeOne decodes exactly one YAML document into a node tree.
func decodeOne(file string, data []byte) (doc *yaml.Node, e *Error) {
	// yaml.v3 has panicked on malformed input before (CVE-2022-28948); a
	// panic here must become a load error, which denies, not a crash.
	defer func() {
		if r := recover(); r != nil {
			doc, e = nil, &Error{Pos: Position{file, 1}, Msg: fmt.Sprintf("YAML parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var d yaml.Node
	if err := dec.Decode(&d); err != nil {
		if err == io.EOF {
			return nil, &Error{Pos: Position{file, 1}, Msg: "file is empty; start it with version: 1"}
		}
		return nil, syntaxError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		return nil, &Error{Pos: Position{file, extra.Line}, Msg: "a second YAML document (---) starts here; keep one document per file and put more in policies.d/"}
	}
	if len(d.Content) == 0 {
		return nil, &Error{Pos: Position{file, 1}, Msg: "file has no content; start it with version: 1"}
	}
	return &d, nil
}

// syntaxError turns "yaml: line N: msg" into an Error at that line.
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, after
			}
		}
	}
	hint := "check the indentation and quoting"
	if lines := bytes.Split(data, []byte("\n")); line >= 1 && line <= len(lines) && bytes.HasPrefix(bytes.TrimLeft(lines[line-1], " "), []byte("\t")) {
		hint = "indent with spaces, YAML does not allow tabs"
	}
	return &Error{Pos: Position{file, line}, Msg: "YAML syntax error: " + msg + "; " + hint}
}

// parser walks the node tree of one file. Every problem is reported with the
// file, line and field path; walking continues to find more.
type parser struct {
	file string
	errs *errList
	frag *fragment
}

func (p *parser) pos(n *yaml.Node) Position { return Position{p.file, n.Line} }

func (p *parser) document(doc *yaml.Node) {
	root := doc.Content[0]
	if p.hasAnchors(root) {
		return
	}
	m, ok := p.fields(p.errs, root, "", "version", "providers", "rules", "deny", "user_policies", "signers", "chain")
	if !ok {
		return
	}
	p.version(root, m)
	if e, ok := m["providers"]; ok {
		p.providers(e.val)
	}
	if e, ok := m["rules"]; ok && p.nonEmptyList(p.errs, e.val, "rules") {
		for i, n := range e.val.Content {
			if r, ok := p.rule(n, fmt.Sprintf("rules[%d]", i)); ok {
				p.frag.rules = append(p.frag.rules, r)
			}
		}
	}
	if e, ok := m["deny"]; ok && p.nonEmptyList(p.errs, e.val, "deny") {
		for i, n := range e.val.Content {
			if id, ok := p.identity(n, fmt.Sprintf("deny[%d]", i), true); ok {
				p.frag.deny = append(p.frag.deny, id)
			}
		}
	}
	if e, ok := m["user_policies"]; ok {
		p.userPolicies(e.key, e.val)
	}
	if e, ok := m["signers"]; ok && p.nonEmptyList(p.errs, e.val, "signers") {
		for i, n := range e.val.Content {
			if s, ok := p.signer(n, fmt.Sprintf("signers[%d]", i)); ok {
				p.frag.signers = append(p.frag.signers, s)
			}
		}
	}
	if e, ok := m["chain"]; ok {
		p.chain(e.key, e.val)
	}
}

// version checks the version key of a file's top-level mapping.
func (p *parser) version(root *yaml.Node, m map[string]entry) {
	if v, ok := m["version"]; !ok {
		p.errs.add(p.pos(root), "version", "missing; add version: 1 at the top of the file")
	} else if v.val.Kind != yaml.ScalarNode || v.val.ShortTag() != "!!int" || v.val.Value != "1" {
		p.errs.add(p.pos(v.val), "version", "must be 1 (the only version this opkssh understands); write version: 1")
	}
}

// hasAnchors reports (and complains about) any anchor or alias. Aliases are
// refused outright: they make a small file expand into a huge tree.
func (p *parser) hasAnchors(n *yaml.Node) bool {
	found := false
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			p.errs.add(p.pos(n), "", "YAML alias *%s is not allowed; write the value out in full", n.Value)
			found = true
			return
		}
		if n.Anchor != "" {
			p.errs.add(p.pos(n), "", "YAML anchor &%s is not allowed; write values out in full", n.Anchor)
			found = true
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return found
}

func (p *parser) providers(n *yaml.Node) {
	if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		p.errs.add(p.pos(n), "providers", "is empty; define at least one provider or remove the key")
		return
	}
	m, ok := p.fields(p.errs, n, "providers")
	if !ok {
		return
	}
	for _, e := range orderedEntries(m) {
		p.frag.providers = append(p.frag.providers, p.provider(e.key, e.val))
	}
}

// provider parses one provider block. Its problems go into the block's own
// error, not into p.errs: a broken provider must not fail the whole load.
func (p *parser) provider(key, n *yaml.Node) providerDef {
	name := key.Value
	field := "providers." + name
	errs := &errList{}
	prov := &Provider{
		Name:                 name,
		Expiration:           Expiration{FromIAT: defaultExpiration},
		RequireEmailVerified: true,
		GroupsClaim:          defaultGroups,
		Pos:                  p.pos(key),
	}
	def := providerDef{p: prov}
	if !validProviderName(name) {
		errs.add(p.pos(key), field, "provider name %q is not allowed; use lower-case letters, digits, '_' and '-', starting with a letter or digit", name)
	}
	m, ok := p.fields(errs, n, field, providerKeys...)
	if ok {
		p.providerFields(errs, prov, m, &def)
	}
	def.err = errs.err()
	return def
}

// providerFields fills prov from the entries of its block. Missing fields
// are reported at the provider's name.
func (p *parser) providerFields(errs *errList, prov *Provider, m map[string]entry, def *providerDef) {
	field := "providers." + prov.Name
	if e, ok := m["kind"]; ok {
		if s, ok := p.str(errs, e.val, field+".kind"); ok {
			if !slices.Contains(providerKinds, s) {
				errs.add(p.pos(e.val), field+".kind", "%q is not a provider kind (known: %s)", s, strings.Join(providerKinds, ", "))
			} else {
				prov.Kind = s
			}
		}
	}
	if prov.IsCI() {
		p.ciProviderFields(errs, prov, m, def)
		return
	}
	if e, ok := m["issuer"]; !ok {
		errs.add(prov.Pos, field, "missing issuer; add the token's iss value, e.g. issuer: https://sso.example.com")
	} else if s, ok := p.str(errs, e.val, field+".issuer"); ok {
		if msg := checkIssuer(s); msg != "" {
			errs.add(p.pos(e.val), field+".issuer", "%s", msg)
		} else {
			prov.Issuer, def.issuerPos = s, p.pos(e.val)
		}
	}
	if e, ok := m["tenants"]; ok {
		list, _ := p.strList(errs, e.val, field+".tenants")
		for i, t := range list {
			if !validTenantID(t) {
				errs.add(p.pos(e.val.Content[i]), fmt.Sprintf("%s.tenants[%d]", field, i), "%q is not a tenant ID; write the directory (tenant) ID, e.g. 00000000-1111-2222-3333-444444444444 (opkssh provider add --preset microsoft --tenant DOMAIN prints it)", t)
			}
		}
		prov.Tenants = list
	}
	if prov.Issuer != "" && strings.Contains(prov.Issuer, TenantPlaceholder) && len(prov.Tenants) == 0 {
		errs.add(prov.Pos, field, "issuer %q is a multi-tenant template; add tenants: [TENANT-ID, ...] listing the tenants whose users may log in", prov.Issuer)
	} else if prov.Issuer != "" && !strings.Contains(prov.Issuer, TenantPlaceholder) && len(prov.Tenants) > 0 {
		errs.add(prov.Pos, field+".tenants", "tenants is only for an issuer with the %s placeholder, e.g. https://login.microsoftonline.com/%s/v2.0", TenantPlaceholder, TenantPlaceholder)
	}
	if e, ok := m["client_ids"]; !ok {
		errs.add(prov.Pos, field, "missing client_ids; add the OAuth client IDs the tokens are issued to, e.g. client_ids: [opkssh]")
	} else {
		prov.ClientIDs, _ = p.strList(errs, e.val, field+".client_ids")
	}
	if e, ok := m["expiration"]; ok {
		if s, ok := p.str(errs, e.val, field+".expiration"); ok {
			exp, msg := parseExpiration(s)
			if msg != "" {
				errs.add(p.pos(e.val), field+".expiration", "%s", msg)
			}
			prov.Expiration = exp
		}
	}
	for key, dst := range map[string]*string{"ca_file": &prov.CAFile, "jwks_file": &prov.JWKSFile} {
		if e, ok := m[key]; ok {
			if s, ok := p.str(errs, e.val, field+"."+key); ok {
				if msg := checkAbsPath(s); msg != "" {
					errs.add(p.pos(e.val), field+"."+key, "%s", msg)
				}
				*dst = s
			}
		}
	}
	if e, ok := m["require_email_verified"]; ok {
		if b, ok := p.boolean(errs, e.val, field+".require_email_verified"); ok {
			prov.RequireEmailVerified = b
		}
	}
	if e, ok := m["require_gq"]; ok {
		if b, ok := p.boolean(errs, e.val, field+".require_gq"); ok {
			prov.RequireGQ = b
		}
	}
	if e, ok := m["groups_claim"]; ok {
		if s, ok := p.str(errs, e.val, field+".groups_claim"); ok {
			if msg := checkClaimPath(s); msg != "" {
				errs.add(p.pos(e.val), field+".groups_claim", "%s", msg)
			}
			prov.GroupsClaim = s
		}
	}
}

func isTrue(n *yaml.Node) bool { return strings.EqualFold(n.Value, "true") }

func (p *parser) rule(n *yaml.Node, field string) (Rule, bool) {
	r := Rule{Pos: p.pos(n)}
	m, ok := p.fields(p.errs, n, field, ruleKeys...)
	if !ok {
		return r, false
	}
	before := len(p.errs.errs) + p.errs.dropped
	p.rulePrincipals(m, &r, field)
	r.Provider, r.Identities = p.providerAndIdentities(m, r.Pos, field,
		"missing provider; name the provider whose tokens this rule accepts, e.g. provider: corp",
		"missing identities; list who may log in, e.g. identities: [{email: alice@example.com}]")
	if e, ok := m["require"]; ok {
		r.RequireAMR, r.RequireFrom = p.require(e.val, field+".require")
	}
	p.ruleOptions(m, &r, field)
	if e, ok := m["comment"]; ok {
		if e.val.Kind != yaml.ScalarNode || e.val.ShortTag() == "!!null" {
			p.errs.add(p.pos(e.val), field+".comment", "expected text, found %s; quote it", describe(e.val))
		}
		r.Comment = e.val.Value
	}
	return r, len(p.errs.errs)+p.errs.dropped == before
}

// providerAndIdentities reads the provider and identities of a rule or a signers entry: the
// provider is recorded as a reference that merge checks, each identity as in a rule. The two
// messages say what to add when one is missing.
func (p *parser) providerAndIdentities(m map[string]entry, pos Position, field, noProvider, noIdentities string) (string, []Identity) {
	var prov string
	var ids []Identity
	if e, ok := m["provider"]; !ok {
		p.errs.add(pos, field, "%s", noProvider)
	} else if s, ok := p.str(p.errs, e.val, field+".provider"); ok {
		prov = s
		p.frag.refs = append(p.frag.refs, providerRef{s, p.pos(e.val), field + ".provider"})
	}
	if e, ok := m["identities"]; !ok {
		p.errs.add(pos, field, "%s", noIdentities)
	} else if p.nonEmptyList(p.errs, e.val, field+".identities") {
		for i, c := range e.val.Content {
			if id, ok := p.identity(c, fmt.Sprintf("%s.identities[%d]", field, i), false); ok {
				ids = append(ids, id)
			}
		}
	}
	return prov, ids
}

func (p *parser) require(n *yaml.Node, field string) ([]string, []netip.Prefix) {
	m, ok := p.fields(p.errs, n, field, "amr", "from")
	if !ok {
		return nil, nil
	}
	var amr []string
	var from []netip.Prefix
	if e, ok := m["amr"]; ok {
		amr, _ = p.strList(p.errs, e.val, field+".amr")
	}
	if e, ok := m["from"]; ok {
		list, _ := p.strList(p.errs, e.val, field+".from")
		for i, s := range list {
			pfx, err := parseNetwork(s)
			if err != nil {
				p.errs.add(p.pos(e.val.Content[i]), fmt.Sprintf("%s.from[%d]", field, i), "%q is not an address or network; write e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32", s)
				continue
			}
			from = append(from, pfx)
		}
	}
	if _, a := m["amr"]; !a {
		if _, f := m["from"]; !f {
			p.errs.add(p.pos(n), field, "has no conditions; add amr: [mfa] or from: [10.0.0.0/8], or remove require")
		}
	}
	return amr, from
}

// parseNetwork accepts a CIDR network or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// identity parses an identity entry; deny entries may also carry provider.
func (p *parser) identity(n *yaml.Node, field string, deny bool) (Identity, bool) {
	id := Identity{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		p.errs.add(id.Pos, field, "expected a mapping such as email: alice@example.com, found %s", describe(n))
		return id, false
	}
	known := identityKeys
	if deny {
		known = append(known[:len(known):len(known)], "provider")
	}
	if n.Kind == yaml.MappingNode {
		known = append(known[:len(known):len(known)], ciIdentityKeys(n)...)
	}
	before := len(p.errs.errs) + p.errs.dropped
	m, ok := p.fields(p.errs, n, field, known...)
	if !ok {
		return id, false
	}
	var kinds []string
	for _, k := range identityKeys {
		if _, ok := m[k]; ok {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		if len(p.errs.errs)+p.errs.dropped == before {
			p.errs.add(id.Pos, field, "has no identity; give exactly one of %s", strings.Join(identityKeys, ", "))
		}
		return id, false
	case 1:
	default:
		p.errs.add(id.Pos, field, "has %s; give exactly one identity per entry (write one entry each)", strings.Join(kinds, " and "))
		return id, false
	}
	id.Kind = kinds[0]
	val := m[id.Kind].val
	vfield := field + "." + id.Kind
	if id.Kind == KindClaim {
		if !p.claim(val, vfield, &id) {
			return id, false
		}
	} else if s, ok := p.str(p.errs, val, vfield); ok {
		id.Value = s
	} else {
		return id, false
	}
	if msg := checkIdentity(id); msg != "" {
		p.errs.add(p.pos(val), vfield, "%s", msg)
	}
	if isCIKind(id.Kind) {
		p.conditions(m, field, &id)
	}
	if e, ok := m["provider"]; ok {
		if s, ok := p.str(p.errs, e.val, field+".provider"); ok {
			id.Provider = s
			p.frag.refs = append(p.frag.refs, providerRef{s, p.pos(e.val), field + ".provider"})
		}
	}
	return id, len(p.errs.errs)+p.errs.dropped == before
}

func (p *parser) claim(n *yaml.Node, field string, id *Identity) bool {
	m, ok := p.fields(p.errs, n, field, "name", "value")
	if !ok {
		return false
	}
	good := true
	for _, key := range []string{"name", "value"} {
		e, ok := m[key]
		if !ok {
			p.errs.add(p.pos(n), field, "missing %s; write claim: {name: realm_access.roles, value: admin}", key)
			good = false
			continue
		}
		s, ok := p.str(p.errs, e.val, field+"."+key)
		good = good && ok
		if key == "name" {
			id.ClaimName = s
		} else {
			id.Value = s
		}
	}
	return good
}

// entry is one key: value pair of a mapping.
type entry struct{ key, val *yaml.Node }

// fields checks that n is a mapping with unique scalar keys, all in known
// (any key if known is empty), and returns its entries by key. Bad entries
// are reported and left out.
func (p *parser) fields(errs *errList, n *yaml.Node, field string, known ...string) (map[string]entry, bool) {
	if n.Kind != yaml.MappingNode {
		what := field
		if what == "" {
			what = "the file"
		}
		errs.add(p.pos(n), field, "expected a mapping (key: value), found %s; check the indentation of %s", describe(n), what)
		return nil, false
	}
	m := make(map[string]entry, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" || k.Style&yaml.TaggedStyle != 0 {
			errs.add(p.pos(k), field, "keys must be plain names, found %s", describe(k))
			continue
		}
		if prev, dup := m[k.Value]; dup {
			errs.add(p.pos(k), field, "duplicate key %q (first at line %d); remove one", k.Value, prev.key.Line)
			continue
		}
		if len(known) > 0 && !slices.Contains(known, k.Value) {
			errs.add(p.pos(k), field, "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		m[k.Value] = entry{k, v}
	}
	return m, true
}

// orderedEntries returns the entries in file order.
func orderedEntries(m map[string]entry) []entry {
	list := slices.Collect(maps.Values(m))
	slices.SortFunc(list, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.key.Line, b.key.Line), cmp.Compare(a.key.Column, b.key.Column))
	})
	return list
}

func (p *parser) nonEmptyList(errs *errList, n *yaml.Node, field string) bool {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		errs.add(p.pos(n), field, "is empty; add entries or remove the key")
	case n.Kind != yaml.SequenceNode:
		errs.add(p.pos(n), field, "expected a list, found %s; write each entry on a line starting with - , or [a, b]", describe(n))
	case len(n.Content) == 0:
		errs.add(p.pos(n), field, "is an empty list; add entries or remove the key")
	default:
		return true
	}
	return false
}

func (p *parser) strList(errs *errList, n *yaml.Node, field string) ([]string, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		errs.add(p.pos(n), field, "expected a list, found a string; write [%s]", n.Value)
		return nil, false
	}
	if !p.nonEmptyList(errs, n, field) {
		return nil, false
	}
	list := make([]string, 0, len(n.Content))
	good := true
	for i, c := range n.Content {
		s, ok := p.str(errs, c, fmt.Sprintf("%s[%d]", field, i))
		good = good && ok
		list = append(list, s)
	}
	return list, good
}

// str returns a non-empty single-line string value. Unquoted numbers and
// booleans are taken as written (sub: 248289761001 means the string).
func (p *parser) str(errs *errList, n *yaml.Node, field string) (string, bool) {
	switch {
	case n.Kind != yaml.ScalarNode:
		errs.add(p.pos(n), field, "expected a string, found %s", describe(n))
	case n.ShortTag() == "!!null" || n.Value == "":
		errs.add(p.pos(n), field, "is empty; give a value or remove the key")
	case n.Style&yaml.TaggedStyle != 0 && n.Tag != "!!str":
		errs.add(p.pos(n), field, "YAML tag %s is not allowed; remove it (quote the value instead)", n.Tag)
	case !utf8.ValidString(n.Value) || strings.IndexFunc(n.Value, unicode.IsControl) >= 0:
		errs.add(p.pos(n), field, "contains a control character or line break; write the value on one line")
	case strings.TrimSpace(n.Value) != n.Value:
		errs.add(p.pos(n), field, "has leading or trailing spaces; remove them")
	default:
		return n.Value, true
	}
	return "", false
}

func (p *parser) boolean(errs *errList, n *yaml.Node, field string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		errs.add(p.pos(n), field, "expected true or false, found %s", describe(n))
		return false, false
	}
	return isTrue(n), true
}

// describe names a node's kind for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return quote(n.Value)
	}
	return "something else"
}
