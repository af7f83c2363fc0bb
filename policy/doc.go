// Package policy loads, evaluates and edits the server's policies.yaml, which
// says which OpenID identities may log in as which local users.
//
//	version: 1
//	providers:
//	  corp:                                  # [a-z0-9][a-z0-9_-]*
//	    issuer: https://sso.example.com      # == the token's iss; http only for loopback
//	    client_ids: [opkssh]                 # the token's aud must contain one
//	    expiration: 24h                      # from iat, at most 720h; or "oidc": the token's exp
//	    ca_file: /etc/opkssh/corp-ca.pem     # optional, absolute
//	    jwks_file: /etc/opkssh/corp-jwks.json  # optional, absolute: pinned keys
//	    require_email_verified: true         # default true
//	    groups_claim: groups                 # default "groups"; dotted path
//	rules:
//	  - principals: [root, deploy]           # user names
//	    provider: corp
//	    identities:                          # any one matches; exactly one key per entry
//	      - email: alice@example.com
//	      - email_domain: example.com
//	      - sub: "248289761001"
//	      - group: ssh-admins
//	      - claim: {name: realm_access.roles, value: admin}
//	    require: {amr: [mfa], from: [10.0.0.0/8]}  # optional; all must hold
//	    options: [restrict, 'command="/usr/local/bin/deploy"']  # optional authorized_keys options
//	  - principals_from: groups              # instead of principals: the accounts a claim names
//	    principals_allowed: [deploy, "db-*"] # required with principals_from: globs they must match
//	    provider: corp
//	    identities: [{email_domain: example.com}]
//	deny:                                    # identities; provider: NAME limits one to a provider
//	  - email: mallory@example.com
//	  - sub: "00u1a2b3c4D5e6F7g8h9"          # safest: an email entry misses aliases and
//	    provider: corp                       # plus-addresses, which are the OP's business
//	user_policies:                           # optional; off unless enabled (see User policies)
//	  enabled: true
//	  path: .config/opkssh/policies.yaml     # below each user's home; the default
//	  providers: [corp]                      # providers user files may name; required when enabled
//	chain:                                   # optional: another AuthorizedKeysCommand for keys
//	  command: /usr/bin/sss_ssh_authorizedkeys %u   # that are not opkssh certificates (chain.go)
//	  timeout: 5s
//
// Drop-in files policies.d/*.yaml (same schema, version included; names
// starting with '.' and other suffixes such as .yml are ignored) are merged
// after the main file in name order: providers by name (a name defined twice
// is an error), rules and deny entries appended; user_policies may be set in
// one file only, and so may chain.
//
// # Fail closed
//
// Loading is strict: an unknown, duplicate or missing key, a wrong type, an
// empty list, a YAML anchor or alias, a second YAML document, a file over
// 4 MiB, a file or directory not owned by a trusted user (root) or writable
// by group or others (checked on the open descriptor; a symbolic link is
// followed only inside its own directory), all are errors naming file:line
// and field, and the caller must then deny every login. A value that would match everybody (an
// empty value, a domain without a dot, a claim such as iss or aud that every
// token carries) is an error too. The two exceptions: a problem inside a
// single providers.NAME block puts that provider in Policy.Broken and its
// rules deny with reason provider_broken, so one bad provider does not lock
// out the users of the others; and a rule's invalid options (or a claim
// source its provider cannot support) make that rule deny with rule_broken
// (Policy.BrokenRules). Rules and deny entries are never skipped: a skipped
// deny entry would let someone in.
//
// # Matching
//
// Evaluate takes the claims of a token the caller has already verified. It
// refuses a principal that is not 1-32 characters of [A-Za-z0-9_.-]
// starting with a letter, digit or '_'. A matching deny entry wins over every
// rule. Then the rules for the token's provider that list the principal
// (exactly, case-sensitively) are tried in order; the first with a matching
// identity, all required amr values and, with require.from, a client address
// in one of the listed networks (EvaluateFrom; an unknown address never
// matches) allows.
//
//   - email: the token's email string, equal ignoring ASCII case only (a
//     non-ASCII lookalike never folds into an ASCII letter).
//   - email_domain: the part after the last '@' of the token's email, equal
//     ignoring ASCII case. No subdomain or suffix matching: example.com does
//     not match a.example.com, example.com.evil.io or evilexample.com.
//   - Both need email_verified to be the JSON boolean true unless the
//     provider sets require_email_verified: false; the string "true" is not
//     accepted. Deny entries match whatever email_verified says.
//   - sub: exact string equality.
//   - group: the provider's groups claim must be a list of strings
//     containing the value exactly, or a single string equal to it (some
//     OPs send one group so; the string is never split). A group deny entry
//     also matches a groups claim of any other shape, which cannot show the
//     person is outside the group.
//   - claim: matches a string equal to the value, a list containing it, or a
//     number or boolean whose JSON text equals it (value: true matches true).
//   - Claim names (and groups_claim) are looked up as a top-level claim
//     first, so namespaced claims like https://example.com/roles work, and
//     otherwise as a dotted path into nested objects.
//
// A rule with principals_from lists the principal when a glob of principals_allowed matches it
// (root only through the glob "root"), and allows, after its identities and require, when the
// token's claim holds it as a string or in a list of strings; email_local_part and
// preferred_username are derived sources with extra conditions (principals.go). A rule's options
// are checked against sshd's authorized_keys grammar; a bad one makes that rule alone unusable
// (Rule.Broken, reason rule_broken), as a broken provider block does for its rules (options.go).
//
// Decision.Explain says which deny entry matched or, for every rule that
// could have applied, at which file:line and why each identity failed.
//
// # User policies
//
// With user_policies enabled, a user may let identities log in as that user
// only, from a file in their home (UserFile, ParseUserFile):
//
//	version: 1
//	identities:                  # who may log in as the file's owner
//	  - email: bob@example.com
//	    provider: corp           # one of user_policies.providers
//	  - sub: "248289761001"
//	    provider: corp
//
// Only email and sub identities are accepted, the two forms that name one
// person: email_domain, group and claim would hand the account to sets of
// people whose membership the user does not control. There are no principals
// (the file's account is the principal), no require and no deny. Naming a
// provider that user_policies.providers does not list is an error.
//
// The file is consulted only after the administrator's policy denied by its
// rules alone (UserFileMayGrant): a matching deny entry, an unknown or broken
// provider and an invalid principal are final, and a provider missing from
// user_policies.providers never reaches users' files. Its entries for the
// token's provider are then matched like a rule's identities
// (EvaluateUserFile); the rules' require conditions do not apply.
//
// LoadUserFile reads the file without privilege, as the verify user, checking
// what sshd's StrictModes checks for authorized_keys: from the home down,
// every directory and the file must be owned by the user or root and not
// writable by group or others; below the home no symbolic link is followed;
// the file is a regular file of at most 64 KiB. On Linux it walks with openat
// and O_PATH, so the verify user needs search permission only, and checks each
// open descriptor. A missing file or an unsearchable directory is
// ErrNoUserFile (no grants, not an error); unsafe directories are reported
// only when the file exists, so a user who never opted in sees no error.
// root's file (uid 0) is never read. The trade-off of enabling this is in
// README.md, "Per-user policies".
//
// # Editing
//
// Add edits one file under a flock on a sibling ".lock" file, keeps its
// comments and order, checks the result with Parse and replaces the file
// atomically with the same mode and owner.
package policy
