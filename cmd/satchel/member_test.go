package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// testWorkers lists, adds and removes workers, and checks the lead of one
// group cannot manage the other's.
func testWorkers(t *testing.T, tc *testChain) {
	var before []chain.Worker
	tc.okJSON(&before, "workers", "list", "-g", "distribution")
	if len(before) != 1 || before[0].Group != chain.DistributionGroup {
		t.Fatalf("distribution workers: %+v", before)
	}
	acct := mustGenerateKey(t).Account()
	var added txOut
	tc.okJSON(&added, "workers", "add", "-g", "distribution", "-a", strings.ToUpper(string(acct)), "-y")
	var after []chain.Worker
	tc.okJSON(&after, "workers", "list", "-g", "distribution")
	if len(after) != 2 || !slices.ContainsFunc(after, func(w chain.Worker) bool { return w.Account == acct && uint64(w.ID) == *added.Worker }) {
		t.Fatalf("after add: %+v", after)
	}
	if out := tc.ok("workers", "list", "-g", "distribution"); !strings.Contains(out, "WORKER  ROLE ACCOUNT") || !strings.Contains(out, string(acct)) {
		t.Errorf("workers list:\n%s", out)
	}
	tc.fails([]string{"only the distribution lead", "sign with the distribution lead key"},
		"workers", "add", "-g", "distribution", "-a", string(acct), "-k", leadKeyFile(tc.cfg, chain.StorageGroup), "-y")
	if errOut := tc.fails([]string{"storage worker 42 does not exist", "satchel workers list -g GROUP"}, "workers", "remove", "-g", "storage", "-w", "42", "-y"); strings.Count(errOut, "satchel workers add") > 1 {
		t.Errorf("workers remove of a missing worker repeats its advice:\n%s", errOut)
	}
	tc.fails([]string{"want an account (64 hex characters"}, "workers", "add", "-g", "storage", "-a", "no-such-file", "-y")
	if out := tc.ok("workers", "remove", "-g", "distribution", "-w", itoa(int(*added.Worker)), "-y"); out != "removed distribution worker "+itoa(int(*added.Worker))+"\n" {
		t.Fatalf("workers remove: %q", out)
	}
	if out := tc.ok("workers", "list", "-g", "storage"); out != "no storage workers\n" {
		t.Errorf("storage workers after removal: %q", out)
	}
	// Members: another member, whose key is named with --key; it cannot
	// create channels of member 0.
	other, _ := newKeyFile(t, t.TempDir(), "bob.key")
	var m txOut
	tc.okJSON(&m, "member", "create", "-k", other, "-y")
	if m.Member == nil || *m.Member != 1 || m.Bag != chain.MemberBag(1) {
		t.Fatalf("second member: %+v", m)
	}
	tc.fails([]string{"only member 0's controller account", "pass --key with the key of the account named above"},
		"channel", "create", "--member", "0", "-k", other, "-y")
	tc.fails([]string{"member 7 does not exist", "satchel member create"}, "channel", "create", "--member", "7", "-y")
}
