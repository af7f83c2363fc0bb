// Command floor links the libraries that opkssh verify cannot do without and does nothing else.
// make bench times it next to a Go program with an empty main and opkssh itself: the difference
// between the three shows what the runtime, these libraries' package initialisation and our own
// code each cost on the machine at hand. It is never shipped.
package main

import (
	_ "encoding/json"                            // the key cache, the policy snapshot, the PK token's claims
	_ "github.com/openpubkey/openpubkey/pktoken" // the PK token codec (brings in jwx)
	_ "github.com/spf13/cobra"                   // the command line
	_ "golang.org/x/crypto/ssh"                  // the certificate
	_ "gopkg.in/yaml.v3"                         // policies.yaml when the snapshot is stale
	_ "log/slog"                                 // the decision log
	_ "log/syslog"                               // the decision log's syslog destination
	_ "net/http"                                 // discovery and JWKS on a cold cache or a kid miss
)

func main() {}
