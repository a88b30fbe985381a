package distributor

import (
	"slices"
	"testing"
)

// rangeSpans keeps the ranges http.ServeContent sends, in the request's
// order, and leaves out those that send nothing.
func TestRangeSpans(t *testing.T) {
	for _, tc := range []struct {
		hdr  string
		want []span
	}{
		{"bytes=0-0", []span{{0, 1}}},
		{"bytes=90-,0-9", []span{{90, 100}, {0, 10}}},
		{"bytes= 5-9 ,, -10", []span{{5, 10}, {90, 100}}},
		{"bytes=-0,200-300,10-19", []span{{10, 20}}},
		{"bytes=95-200,-200", []span{{95, 100}, {0, 100}}},
	} {
		if got := rangeSpans(tc.hdr, 100); !slices.Equal(got, tc.want) {
			t.Errorf("rangeSpans(%q) = %v, want %v", tc.hdr, got, tc.want)
		}
	}
}
