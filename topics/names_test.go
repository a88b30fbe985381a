package topics

import (
	"slices"
	"testing"
	"time"
)

// Names lists each contract topic once, in the form String writes and Parse
// reads back, then the audit topic; every topic Classify can give is among
// them.
func TestNames(t *testing.T) {
	names := Names()
	if len(names) != 82 {
		t.Fatalf("Names() has %d names, want 81 contract topics and the audit topic", len(names))
	}
	if names[81] != AuditTopic {
		t.Fatalf("Names()[81] = %q, want the audit topic %q", names[81], AuditTopic)
	}
	seen := make(map[string]bool)
	for _, n := range names[:81] {
		tp, err := Parse(n)
		if err != nil || tp.String() != n {
			t.Fatalf("Names() holds %q: Parse = %v, %v; want a contract topic in lower case", n, tp, err)
		}
		if seen[n] {
			t.Fatalf("Names() holds %q twice", n)
		}
		seen[n] = true
	}
	for _, r := range []Requirements{
		{},
		{SizeBytes: 12 * megabyte, Duration: 60 * day, Availability: 70, SpeedMbps: 9},
		{SizeBytes: 1 << 40, Duration: 1000 * day, Availability: 100, SpeedMbps: 1000},
		{SizeBytes: 1, Duration: time.Hour, Availability: 99.9, SpeedMbps: 1},
	} {
		tp, err := Classify(r)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(names, tp.String()) {
			t.Errorf("Classify(%+v) = %s, not in Names()", r, tp)
		}
	}
}
