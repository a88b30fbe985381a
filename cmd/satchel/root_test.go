package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// helpSection returns the command names `satchel --help` lists under title.
func helpSection(t *testing.T, help, title string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(help, "\n"+title+"\n")
	if !ok {
		t.Fatalf("help has no %q section:\n%s", title, help)
	}
	var names []string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		names = append(names, strings.Fields(line)[0])
	}
	return names
}

func rootHelp(t *testing.T) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("satchel --help: exit %d, stderr %s", code, errOut.String())
	}
	return out.String()
}

// TestRootHelpSections checks `satchel --help` lists the commands by section,
// the sections in order, and every registered command exactly once.
func TestRootHelpSections(t *testing.T) {
	help := rootHelp(t)
	var at []int
	for _, s := range helpSections {
		at = append(at, strings.Index(help, "\n"+s.title+"\n"))
	}
	if !slices.IsSorted(at) || at[0] < 0 {
		t.Errorf("sections %v are not all listed, in order:\n%s", at, help)
	}
	listed := map[string]string{}
	for _, s := range helpSections {
		for _, name := range helpSection(t, help, s.title) {
			if prev, dup := listed[name]; dup {
				t.Errorf("%s is listed under %s and %s", name, prev, s.title)
			}
			listed[name] = s.id
		}
	}
	root := newRootCmd(&App{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	for _, c := range root.Commands() {
		if want, ok := sectionOf[c.Name()]; ok && listed[c.Name()] != want {
			t.Errorf("%s is listed under %q, want %q", c.Name(), listed[c.Name()], want)
		}
	}
	for _, name := range []string{"chain", "storage", "distributor", "member", "bag", "params", "topic", "help"} {
		if _, ok := listed[name]; !ok {
			t.Errorf("%s is not listed in a section:\n%s", name, help)
		}
	}
	if strings.Contains(help, "Additional Commands:") {
		t.Errorf("a command has no section:\n%s", help)
	}
}

// TestRootHelpUnknownSection checks a command sectionOf does not name still
// appears in the help.
func TestRootHelpUnknownSection(t *testing.T) {
	saved := commandGroups
	t.Cleanup(func() { commandGroups = saved })
	commandGroups = append(slices.Clone(saved), func(*App) *cobra.Command {
		return &cobra.Command{Use: "zzz-new", Short: "A command without a section", Run: func(*cobra.Command, []string) {}}
	})
	help := rootHelp(t)
	if names := helpSection(t, help, "Additional Commands:"); !slices.Contains(names, "zzz-new") {
		t.Errorf("zzz-new is not listed:\n%s", help)
	}
}

// TestEveryCommandHasExample: the README promises an example in every
// command's help.
func TestEveryCommandHasExample(t *testing.T) {
	root := newRootCmd(&App{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && len(c.Commands()) == 0 && c.Example == "" && !c.Hidden &&
			c.Name() != "help" && !strings.HasPrefix(c.CommandPath(), "satchel completion") {
			t.Errorf("%s has no example in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// A mistyped subcommand of any group is an error that says so, with the
// nearest name: never the group's help and exit 0, as if it had run.
func TestUnknownSubcommandFails(t *testing.T) {
	root := newRootCmd(&App{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasAvailableSubCommands() || strings.HasPrefix(c.CommandPath(), "satchel completion") {
			return
		}
		args := append(strings.Fields(c.CommandPath())[1:], "nosuchcommand")
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		if code == 0 || out.Len() != 0 {
			t.Errorf("satchel %s: exit %d, stdout %q; want a failure", strings.Join(args, " "), code, out.String())
		}
		// audit takes PEER OBJECT beside its report subcommand.
		if c.Name() != "audit" && !strings.Contains(errOut.String(), "--help` for its commands") {
			t.Errorf("satchel %s: stderr %q; want where the commands are listed", strings.Join(args, " "), errOut.String())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"bag", "lst"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), `did you mean "list"?`) {
		t.Errorf("satchel bag lst: exit %d, stderr %q; want the nearest command", code, errOut.String())
	}
}

// A command called wrongly (an argument or a required flag missing, a flag
// unknown) shows its usage line with the error.
func TestCallErrorsShowUsage(t *testing.T) {
	for _, tc := range []struct{ args, want []string }{
		{[]string{"object", "list"}, []string{"accepts 1 arg(s), received 0", "satchel object list BAG"}},
		{[]string{"put", "f.txt"}, []string{`required flag(s) "bag" not set`, "satchel put FILE --bag BAG"}},
		{[]string{"channel", "create", "-m", "1"}, []string{"unknown shorthand flag: 'm' in -m", "satchel channel create --member ID"}},
		{[]string{"key", "new", "a", "b"}, []string{"accepts at most 1 arg(s), received 2", "satchel key new [FILE]"}},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		if want := "error: " + tc.want[0] + "; usage: " + tc.want[1]; code == 0 || !strings.HasPrefix(errOut.String(), want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want it to start %q", strings.Join(tc.args, " "), code, errOut.String(), want)
		}
	}
}
