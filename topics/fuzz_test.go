package topics

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that whatever it accepts
// re-encodes to the same string in lower case, and that whatever it rejects
// is rejected for one of the documented reasons.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0f01020303", "0f03030101", "0F03030101", "0f0102030", "0f00020303",
		"0f01040303", "0e01020303", "0x0f010203", "", "0f0102é303",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrLength) && !errors.Is(err, ErrHex) &&
				!errors.Is(err, ErrPrefix) && !errors.Is(err, ErrDescriptor) {
				t.Fatalf("Parse(%q) error %v wraps none of the sentinels", s, err)
			}
			if tp != (Topic{}) {
				t.Fatalf("Parse(%q) = %+v with error %v, want the zero Topic", s, tp, err)
			}
			if !strings.HasPrefix(err.Error(), "topic ") {
				t.Fatalf("Parse(%q) error %q does not name the topic", s, err)
			}
			return
		}
		if got := tp.String(); got != strings.ToLower(s) {
			t.Fatalf("Parse(%q).String() = %q, want %q", s, got, strings.ToLower(s))
		}
		if err := tp.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid topic: %v", s, err)
		}
		if back, err := FromBytes(tp.Bytes()); err != nil || back != tp {
			t.Fatalf("FromBytes(Parse(%q).Bytes()) = %+v, %v; want %+v", s, back, err, tp)
		}
	})
}
