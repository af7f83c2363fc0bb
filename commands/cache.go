package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/spf13/cobra"

	"github.com/opkssh-team/opkssh/verifier"
)

func newCacheCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "cache [list|clear]",
		Short: "Show or clear verify's cache of the OPs' keys",
		Long: `Show or clear the cache of OpenID Providers' discovery documents and signing keys that
"opkssh verify" keeps so that logins need no network request and survive an OP outage.

  opkssh cache          list: issuer, when fetched, fresh until, key IDs
  opkssh cache clear    remove every entry (the next login fetches again)

--json lists the entries as a JSON array for scripts.`,
		Example: `  opkssh cache
  opkssh cache --json | jq -r '.[] | select(.stale) | .issuer'
  sudo opkssh cache clear`,
		Args:      cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"list", "clear"},
		RunE: func(cmd *cobra.Command, args []string) error {
			action := "list"
			if len(args) == 1 {
				action = args[0]
			}
			switch action {
			case "list":
				return listCache(cmd, dir, asJSON)
			default: // clear
				n, err := verifier.ClearCacheDir(dir)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Removed %s from %s.\n", plural(n, "cache entry", "cache entries"), dir)
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&dir, "cache-dir", verifier.DefaultCacheDir, "cache directory (as given to verify)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "list the entries as JSON for scripts")
	return cmd
}

// cacheListing is one entry of "opkssh cache --json".
type cacheListing struct {
	Issuer     string     `json:"issuer"`
	FetchedAt  *time.Time `json:"fetched_at"` // null: never fetched successfully
	FreshUntil *time.Time `json:"fresh_until"`
	Stale      bool       `json:"stale"`
	KeyIDs     []string   `json:"key_ids"`
	LastError  string     `json:"last_error,omitempty"`
}

func listCache(cmd *cobra.Command, dir string, asJSON bool) error {
	entries, err := verifier.ReadCacheDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no cache directory %s: verify has cached nothing there (is it the --cache-dir that sshd_config passes?)", dir)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	sort.Slice(entries, func(i, j int) bool { return entries[i].Issuer < entries[j].Issuer })
	if asJSON {
		list := make([]cacheListing, 0, len(entries))
		for _, e := range entries {
			l := cacheListing{Issuer: e.Issuer, KeyIDs: keyIDs(e.JWKS), LastError: e.LastError}
			if !e.FetchedAt.IsZero() {
				l.FetchedAt, l.FreshUntil = &e.FetchedAt, &e.FreshUntil
				l.Stale = time.Now().After(e.FreshUntil)
			}
			if l.KeyIDs == nil {
				l.KeyIDs = []string{}
			}
			list = append(list, l)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(entries) == 0 {
		fmt.Fprintf(out, "no cached keys in %s\n", dir)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ISSUER\tFETCHED\tFRESH UNTIL\tKEY IDS\tLAST ERROR")
	const layout = "2006-01-02 15:04:05"
	for _, e := range entries {
		fetched, fresh := "never", "-"
		if !e.FetchedAt.IsZero() {
			fetched = e.FetchedAt.Local().Format(layout)
			fresh = e.FreshUntil.Local().Format(layout)
			if time.Now().After(e.FreshUntil) {
				fresh += " (stale)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Issuer, fetched, fresh, strings.Join(keyIDs(e.JWKS), ","), e.LastError)
	}
	return tw.Flush()
}

func keyIDs(raw []byte) []string {
	set, err := jwk.Parse(raw)
	if err != nil {
		return []string{"(unparsable)"}
	}
	var ids []string
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if kid, ok := k.KeyID(); ok {
			ids = append(ids, kid)
		}
	}
	return ids
}
