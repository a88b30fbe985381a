package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// App carries what every command needs: global flags, output streams and the
// printer. Commands take it as their one argument so none reads globals.
type App struct {
	ConfigPath string
	// ConfigGiven says -c was passed: then the file must exist.
	ConfigGiven bool
	JSON        bool
	Verbose     bool
	// TrustRPC is --trust-rpc: read the chain node's answers unproven.
	TrustRPC bool
	Out      io.Writer
	Err      io.Writer
	Log      *slog.Logger
}

// Printer returns the printer that honours --json for this invocation.
func (a *App) Printer() *Printer { return &Printer{w: a.Out, json: a.JSON} }

// exitError carries a specific process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run builds the command tree, executes it with args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &App{Out: stdout, Err: stderr}
	root := newRootCmd(app)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "error: %v\n", lockHint(usageHint(cmd, err)))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// lockHint explains a lock another process holds, such as a node's
// database a running node has open, which the system words only as
// "resource temporarily unavailable".
func lockHint(err error) error {
	if errors.Is(err, syscall.EWOULDBLOCK) && !strings.Contains(err.Error(), "another process") {
		return fmt.Errorf("%w; another process holds it open (the same node running already?): stop that one first, or use another directory", err)
	}
	return err
}

// callErrors start the messages cobra gives for a command called wrongly:
// an argument missing or extra, a flag unknown, without its value or not
// set when required.
var callErrors = []string{"accepts ", "requires at least ", "requires at most ", "unknown flag: ",
	"unknown shorthand flag: ", "flag needs an argument: ", "required flag(s) "}

var unknownCommand = regexp.MustCompile(`^unknown command "([^"]*)" for "[^"]*"$`)

// usageHint adds to an error about how cmd was called its usage line, and
// to an unknown subcommand of a group the nearest one and where the list
// is, so the user sees how to call it without running --help.
func usageHint(cmd *cobra.Command, err error) error {
	if cmd == nil {
		return err
	}
	msg := err.Error()
	if m := unknownCommand.FindStringSubmatch(msg); m != nil && cmd.HasAvailableSubCommands() {
		hint := fmt.Sprintf("run `%s --help` for its commands", cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only where cobra suggests
		}
		if sug := cmd.SuggestionsFor(m[1]); len(sug) > 0 {
			hint = fmt.Sprintf("did you mean %q? %s", sug[0], hint)
		}
		return fmt.Errorf("%w; %s", err, hint)
	}
	for _, p := range callErrors {
		if strings.HasPrefix(msg, p) {
			return fmt.Errorf("%w; usage: %s", err, cmd.UseLine())
		}
	}
	return err
}

func newRootCmd(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "satchel",
		Short: "Satchel: peer-to-peer storage and distribution on libp2p",
		Long: `Satchel is a peer-to-peer storage and distribution network. Storage providers
keep the data, distributors serve it, and an on-chain data directory decides
who stores and serves what.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			app.ConfigGiven = cmd.Flags().Changed("configPath")
			level := slog.LevelInfo
			if app.Verbose {
				level = slog.LevelDebug
			}
			app.Log = slog.New(slog.NewTextHandler(app.Err, &slog.HandlerOptions{Level: level}))
		},
	}
	root.PersistentFlags().StringVarP(&app.ConfigPath, "configPath", "c", "./config.yml",
		"path to the YAML config file (relative to the working directory)")
	root.PersistentFlags().BoolVar(&app.JSON, "json", false, "print data as JSON")
	root.PersistentFlags().BoolVarP(&app.Verbose, "verbose", "v", false, "log debug messages")
	root.PersistentFlags().BoolVar(&app.TrustRPC, "trust-rpc", false,
		"believe the chain node at chain.rpc without proofs (default: every read is proven against the validators of chain.genesis or chain.trustHeight/trustHash)")
	app.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	for _, g := range helpSections {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
	}
	root.SetHelpCommandGroupID(toolsSection)
	root.SetCompletionCommandGroupID(toolsSection)
	for _, add := range commandGroups {
		cmd := add(app)
		if cmd.GroupID == "" || !root.ContainsGroup(cmd.GroupID) {
			// A command not in sectionOf keeps no section: cobra lists it
			// under "Additional Commands", so it is never hidden.
			cmd.GroupID = sectionOf[cmd.Name()]
		}
		root.AddCommand(cmd)
	}
	return root
}

// groupCmd returns a command that groups subs and prints its help when run
// alone.
func groupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// commandGroups lists the constructors of the top-level command groups; each
// group's file adds itself in an init function so groups stay independent.
var commandGroups []func(*App) *cobra.Command

func registerGroup(f func(*App) *cobra.Command) { commandGroups = append(commandGroups, f) }

// The sections of `satchel --help`, in the order they are listed.
const (
	nodesSection     = "nodes"
	directorySection = "directory"
	dataSection      = "data"
	toolsSection     = "tools"
)

var helpSections = []struct{ id, title string }{
	{nodesSection, "Nodes:"},
	{directorySection, "Data directory:"},
	{dataSection, "Data:"},
	{toolsSection, "Tools:"},
}

// sectionOf places each top-level command in a section of `satchel --help`
// by name, so a command's file registers it with registerGroup alone. A new
// command belongs here too.
var sectionOf = map[string]string{
	"devnet":      nodesSection,
	"chain":       nodesSection,
	"storage":     nodesSection,
	"distributor": nodesSection,
	"audit":       nodesSection,

	"member":  directorySection,
	"key":     directorySection,
	"channel": directorySection,
	"workers": directorySection,
	"bag":     directorySection,
	"bucket":  directorySection,
	"family":  directorySection,
	"object":  directorySection,
	"params":  directorySection,

	"put":      dataSection,
	"get":      dataSection,
	"contract": dataSection,

	"topic":   toolsSection,
	"cid":     toolsSection,
	"version": toolsSection,
}
