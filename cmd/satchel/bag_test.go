package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestRegisterBagCommand checks a file can add a subcommand to `satchel bag`
// from its init function, beside show and list.
func TestRegisterBagCommand(t *testing.T) {
	saved := bagCommands
	t.Cleanup(func() { bagCommands = saved })
	registerBagCommand(func(*App) *cobra.Command {
		return &cobra.Command{Use: "zzz-added BAG", Short: "Added by another file", Run: func(*cobra.Command, []string) {}}
	})
	root := newRootCmd(&App{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	bag, _, err := root.Find([]string{"bag"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range bag.Commands() {
		names = append(names, c.Name())
	}
	for _, want := range []string{"show", "list", "zzz-added"} {
		if !slices.Contains(names, want) {
			t.Errorf("bag subcommands %v lack %s", names, want)
		}
	}
}

// A bag in no storage bucket is located as such, in words rather than two
// empty tables.
func TestPrintLocationNoBuckets(t *testing.T) {
	var b bytes.Buffer
	loc := bagLocation{Bag: "dynamic:member:0", Key: "k", Buckets: []bucketLocation{}, Providers: []dhtProvider{}}
	if err := printLocation(&b, loc); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "bag dynamic:member:0 is in no storage bucket") || strings.Contains(out, "OPERATOR") || strings.Contains(out, "ADDRESSES") {
		t.Errorf("location of a bag in no bucket:\n%s", out)
	}
}
