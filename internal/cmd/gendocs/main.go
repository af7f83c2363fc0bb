// Command gendocs writes the man pages and shell completion scripts of opkssh from its command
// tree, for "make dist" and the packages:
//
//	go run ./internal/cmd/gendocs -out DIR
//
// writes DIR/man/man1/opkssh.1, DIR/man/man1/opkssh-login.1 (one page per command) and
// DIR/completions/{opkssh.bash,_opkssh,opkssh.fish}. It is a program of its own so that none of
// this is linked into the opkssh binary, whose start-up time sshd pays on every login.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opkssh-team/opkssh/commands"
)

func main() {
	out := flag.String("out", "dist", "directory to write man/ and completions/ into")
	date := flag.String("date", "", "date shown in the man pages (default: $SOURCE_DATE_EPOCH, else today)")
	flag.Parse()
	if err := run(*out, manDate(*date)); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// manDate keeps the pages reproducible when the build sets SOURCE_DATE_EPOCH.
func manDate(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	t := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			t = time.Unix(sec, 0)
		}
	}
	return t.UTC().Format("2006-01-02")
}

func run(out, date string) error {
	root := commands.NewRoot()
	manDir := filepath.Join(out, "man", "man1")
	compDir := filepath.Join(out, "completions")
	for _, d := range []string{manDir, compDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var werr error
	walk(root, func(c *cobra.Command) {
		if werr == nil {
			werr = os.WriteFile(filepath.Join(manDir, pageName(c)+".1"), manPage(c, date), 0o644)
		}
	})
	if werr != nil {
		return werr
	}
	var bash, zsh, fish bytes.Buffer
	if err := root.GenBashCompletionV2(&bash, true); err != nil {
		return err
	}
	if err := root.GenZshCompletion(&zsh); err != nil {
		return err
	}
	if err := root.GenFishCompletion(&fish, true); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"opkssh.bash": bash.Bytes(), "_opkssh": zsh.Bytes(), "opkssh.fish": fish.Bytes()} {
		if err := os.WriteFile(filepath.Join(compDir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// walk calls f for c and every command below it that a user runs: not help, not the hidden
// ones (cobra's __complete).
func walk(c *cobra.Command, f func(*cobra.Command)) {
	if c.Hidden || c.Name() == "help" || c.Deprecated != "" {
		return
	}
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// pageName is "opkssh-provider-add" for "opkssh provider add", as git names its pages.
func pageName(c *cobra.Command) string { return strings.ReplaceAll(c.CommandPath(), " ", "-") }

// manPage renders one command as a man(7) page.
func manPage(c *cobra.Command, date string) []byte {
	var b bytes.Buffer
	name := pageName(c)
	fmt.Fprintf(&b, ".TH %s 1 %q %q %q\n", strings.ToUpper(name), date, "opkssh "+commands.Version, "opkssh manual")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", escape(name), escape(c.Short))
	b.WriteString(".SH SYNOPSIS\n")
	fmt.Fprintf(&b, ".B %s\n", escape(c.UseLine()))
	b.WriteString(".SH DESCRIPTION\n")
	text := c.Long
	if text == "" {
		text = c.Short
	}
	paragraphs(&b, text)
	if fl := visibleFlags(c.NonInheritedFlags()); len(fl) > 0 {
		b.WriteString(".SH OPTIONS\n")
		options(&b, fl)
	}
	if fl := visibleFlags(c.InheritedFlags()); len(fl) > 0 {
		b.WriteString(".SH OPTIONS INHERITED FROM PARENT COMMANDS\n")
		options(&b, fl)
	}
	if c.Example != "" {
		b.WriteString(".SH EXAMPLES\n.nf\n")
		for _, line := range strings.Split(c.Example, "\n") {
			b.WriteString(escapeLine(line) + "\n")
		}
		b.WriteString(".fi\n")
	}
	var see []string
	if c.HasParent() {
		see = append(see, pageName(c.Parent()))
	}
	for _, sub := range c.Commands() {
		if !sub.Hidden && sub.Name() != "help" {
			see = append(see, pageName(sub))
		}
	}
	if len(see) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		for i, s := range see {
			sep := ","
			if i == len(see)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, ".BR %s (1)%s\n", escape(s), sep)
		}
	}
	return b.Bytes()
}

func visibleFlags(fs *pflag.FlagSet) []*pflag.Flag {
	var out []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" {
			out = append(out, f)
		}
	})
	return out
}

func options(b *bytes.Buffer, flags []*pflag.Flag) {
	for _, f := range flags {
		b.WriteString(".TP\n")
		head := "\\fB--" + escape(f.Name) + "\\fR"
		if f.Shorthand != "" {
			head = "\\fB-" + escape(f.Shorthand) + "\\fR, " + head
		}
		if t := f.Value.Type(); t != "bool" {
			head += " \\fI" + escape(t) + "\\fR"
		}
		b.WriteString(head + "\n")
		usage := f.Usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" {
			usage += " (default " + f.DefValue + ")"
		}
		b.WriteString(escapeLine(usage) + "\n")
	}
}

// paragraphs renders cobra's help text: blank lines separate paragraphs, indented lines
// (examples, tables) are kept as they are.
func paragraphs(b *bytes.Buffer, text string) {
	inLiteral := false
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		literal := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
		switch {
		case strings.TrimSpace(line) == "":
			if inLiteral {
				b.WriteString(".fi\n")
				inLiteral = false
			}
			b.WriteString(".PP\n")
			continue
		case literal && !inLiteral:
			b.WriteString(".nf\n")
			inLiteral = true
		case !literal && inLiteral:
			b.WriteString(".fi\n")
			inLiteral = false
		}
		b.WriteString(escapeLine(line) + "\n")
	}
	if inLiteral {
		b.WriteString(".fi\n")
	}
}

// escape makes text safe inside a roff line: backslashes, hyphens, and characters beyond ASCII
// (…, →) as \[uXXXX], which groff and mandoc read whatever the locale.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 0x7e:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escapeLine escapes a whole output line, which must not start with a control character.
func escapeLine(s string) string {
	s = escape(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
