package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes beyond 0 (success) and 1 (the command failed), as shells and scripts expect them.
const (
	exitUsage       = 2   // a mistyped command, flag or argument: nothing was done
	exitInterrupted = 130 // Ctrl-C: 128 + SIGINT, as a shell reports a command it interrupted
)

// usageError is a mistake on the command line, reported with exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// strictUsage makes every mistake on the command line of root and its descendants a usageError:
// a command that groups others (provider, server, policy…) refuses an unknown subcommand instead
// of printing its help and exiting 0, so that a provisioning script with a typo fails.
func strictUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = unknownSubcommand
		}
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageError{fmt.Errorf("%v (see %s --help)", err, cmd.CommandPath())}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownSubcommand runs for a command that only groups others: without arguments it shows the
// help, otherwise the first argument is a subcommand it does not have.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())}
}

// interruptGrace is how long a command has, after Ctrl-C cancels its context, to clean up (a
// login releases its lock and its loopback port) before the process exits anyway.
const interruptGrace = 3 * time.Second

// withInterrupt returns a context that Ctrl-C (or SIGTERM) cancels and a function that says
// whether that happened. A command that does not watch its context is not left running: after
// interruptGrace, or at a second Ctrl-C, the process exits with status 130.
func withInterrupt() (ctx context.Context, interrupted func() bool, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var got atomic.Bool
	go func() {
		select {
		case <-sig:
		case <-done:
			return
		}
		got.Store(true)
		cancel()
		select {
		case <-sig:
		case <-time.After(interruptGrace):
		case <-done:
			return
		}
		os.Exit(exitInterrupted)
	}()
	stop = func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
	// A command that watches the signal itself (login) may return before the goroutine above has
	// run: the signal is then still in sig, delivered to both at once.
	interrupted = func() bool { return got.Load() || len(sig) > 0 }
	return ctx, interrupted, stop
}

// exitCode maps the error of a command to the process exit status, reporting it on stderr unless
// it was reported already.
func exitCode(err error, interrupted bool, report func(error)) int {
	var ee exitError
	var ue usageError
	switch {
	case err == nil && !interrupted:
		return 0
	case interrupted:
		if err != nil && !errors.As(err, &ee) && !errors.Is(err, context.Canceled) {
			report(err)
		}
		return exitInterrupted
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		report(err)
		return exitUsage
	}
	report(err)
	return 1
}
