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
