package blockstore

import "testing"

// TestHugeOnRequest: the staging buffers ask for huge pages only where the
// transparent huge pages setting gives them on request; with "never" the
// heap's buffers are used, and a setting that cannot be read or parsed
// leaves it to madvise.
func TestHugeOnRequest(t *testing.T) {
	for setting, want := range map[string]bool{
		"always [madvise] never\n": true,
		"[always] madvise never\n": true,
		"always madvise [never]\n": false,
		"[never]":                  false,
		"":                         true,
		"always madvise never":     true,
		"garbage [never":           true,
	} {
		if got := hugeOnRequest(setting); got != want {
			t.Errorf("hugeOnRequest(%q) = %v, want %v", setting, got, want)
		}
	}
}
