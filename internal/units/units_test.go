package units_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/internal/units"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"0", 0},
		{"1", 1},
		{"4096", 4096},
		{"1B", 1},
		{"7 b", 7},
		{"2kB", 2000},
		{"2KB", 2000},
		{"2kb", 2000},
		{"1.5kB", 1500},
		{"500MB", 500e6},
		{"12 mb", 12e6},
		{"2GB", 2e9},
		{"1.5TB", 1.5e12},
		{"3PB", 3e15},
		{"18EB", 18e18},
		{"1KiB", 1 << 10},
		{"5MiB", 5 << 20},
		{"5 mib", 5 << 20},
		{"10GiB", 10 << 30},
		{"10 gib", 10 << 30},
		{"1TiB", 1 << 40},
		{"2PiB", 2 << 50},
		{"15EiB", 15 << 60},
		{"0.5KiB", 512},
		{".5KiB", 512},
		{"1.KiB", 1024},
		{" 3 MB ", 3e6},
		{"0.4B", 0},
		{"0.5B", 1},
		{"1.0000000000000000000001TB", 1e12}, // exact, not float64
		{"0.000000001GB", 1},
		{"18446744073709551615", math.MaxUint64},
		{"16777215.99999999999909050529822707176208496094TiB", math.MaxUint64},
	}
	for _, tt := range tests {
		got, err := units.ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBytesErrors(t *testing.T) {
	tests := []struct {
		in   string
		is   error
		want string
	}{
		{"", units.ErrSyntax, `size "": empty; want a number of bytes, or a number and a unit such as 10GiB or 500MB (B, kB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, PiB, EiB)`},
		{"   ", units.ErrSyntax, "empty"},
		{"GiB", units.ErrSyntax, `size "GiB": no number`},
		{"-1", units.ErrSyntax, `size "-1": a size cannot be negative`},
		{"-5MB", units.ErrSyntax, "cannot be negative"},
		{"+5MB", units.ErrSyntax, "no number"},
		{"10 parsecs", units.ErrSyntax, `size "10 parsecs": unknown unit "parsecs"`},
		{"5XB", units.ErrSyntax, `unknown unit "XB"`},
		{"1e3MB", units.ErrSyntax, `unknown unit "e3MB"`},
		{"5 M", units.ErrSyntax, `unknown unit "M"`},
		{"1 bytes", units.ErrSyntax, `unknown unit "bytes"`},
		{"1.2.3MB", units.ErrSyntax, `"1.2.3" is not a number`},
		{".", units.ErrSyntax, `"." is not a number`},
		{"NaN", units.ErrSyntax, "no number"},
		{"18446744073709551616", units.ErrRange, `size "18446744073709551616" is too large: the most is 18446744073709551615 bytes (about 16 EiB)`},
		{"99999999999999999999", units.ErrRange, "too large"},
		{"16777216TiB", units.ErrRange, "too large"},
		{"20000000000TB", units.ErrRange, "too large"},
		{"16EiB", units.ErrRange, "too large"},
		{"18.5EB", units.ErrRange, "too large"},
	}
	for _, tt := range tests {
		got, err := units.ParseBytes(tt.in)
		if err == nil || got != 0 {
			t.Errorf("ParseBytes(%q) = %d, %v; want an error", tt.in, got, err)
			continue
		}
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseBytes(%q) error %q (is %v: %v); want it to say %q", tt.in, err, tt.is, errors.Is(err, tt.is), tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{1<<20 - 1, "1 MiB"}, // 1023.999 KiB rounds up a unit, not to "1024 KiB"
		{10 << 30, "10 GiB"},
		{1 << 40, "1 TiB"},
		{1 << 50, "1 PiB"},
		{math.MaxUint64, "16 EiB"},
	}
	for _, tt := range tests {
		if got := units.FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FormatBytes's output of a size in whole binary units reads back as that size.
func TestRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 1023, 1 << 10, 3 << 20, 10 << 30, 1 << 40, 1536, 5 << 50, 1 << 62} {
		got, err := units.ParseBytes(units.FormatBytes(n))
		if err != nil || got != n {
			t.Errorf("ParseBytes(FormatBytes(%d) = %q) = %d, %v", n, units.FormatBytes(n), got, err)
		}
	}
}

func ExampleParseBytes() {
	n, err := units.ParseBytes("1.5 GiB")
	if err != nil {
		panic(err)
	}
	fmt.Println(n, units.FormatBytes(n))
	_, err = units.ParseBytes("10 parsecs")
	fmt.Println(errors.Is(err, units.ErrSyntax))
	// Output:
	// 1610612736 1.5 GiB
	// true
}
