// Package units reads and writes sizes in bytes the way people write them on
// a command line or in a config file: "10GiB", "1.5 TB", "500mb", "4096".
//
// Decimal units (kB, MB, GB, TB, PB, EB) are powers of 1000 and binary units
// (KiB, MiB, GiB, TiB, PiB, EiB) powers of 1024. Units are matched case-blind: a size is never
// in bits, so "mb" can only mean megabytes. Arithmetic is exact, so 1.5TB is
// 1500000000000 bytes, and a size past the largest uint64 is an error.
//
//	n, err := units.ParseBytes("10GiB") // 10737418240
//	s := units.FormatBytes(n)           // "10 GiB"
package units

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Errors a ParseBytes error matches under errors.Is.
var (
	// ErrSyntax: the text is not a size.
	ErrSyntax = errors.New("not a size")
	// ErrRange: the size is more bytes than a uint64 holds.
	ErrRange = errors.New("size out of range")
)

// Names lists the units ParseBytes reads, for help texts and messages.
const Names = "B, kB, MB, GB, TB, PB, EB, KiB, MiB, GiB, TiB, PiB, EiB"

// multipliers are the units by lower-case name; "" is a plain byte count.
var multipliers = map[string]uint64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50, "eib": 1 << 60,
}

// sizeError is a ParseBytes error: its message, and the sentinel it matches.
type sizeError struct {
	msg  string
	kind error
}

func (e *sizeError) Error() string { return e.msg }
func (e *sizeError) Unwrap() error { return e.kind }

func syntaxError(s, why string) error {
	return &sizeError{fmt.Sprintf("size %q: %s; want a number of bytes, or a number and a unit such as 10GiB or 500MB (%s)", s, why, Names), ErrSyntax}
}

// ParseBytes reads a size in bytes: a plain number ("4096") or a number and
// a unit ("10GiB", "1.5 TB", "500mb"). The number is decimal and may have a
// fraction; the result is rounded to a whole byte. Signs, exponents and
// unknown units are refused with an error matching ErrSyntax; a size above
// the largest uint64 with one matching ErrRange.
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && ('0' <= t[i] && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	switch {
	case t == "":
		return 0, syntaxError(s, "empty")
	case t[0] == '-':
		return 0, syntaxError(s, "a size cannot be negative")
	case num == "":
		return 0, syntaxError(s, "no number")
	case strings.Count(num, ".") > 1 || strings.Trim(num, ".") == "":
		return 0, syntaxError(s, fmt.Sprintf("%q is not a number", num))
	}
	mult, ok := multipliers[strings.ToLower(unit)]
	if !ok {
		return 0, syntaxError(s, fmt.Sprintf("unknown unit %q", unit))
	}
	// Exactly: num is digits with at most one point, which big.Rat reads
	// as the decimal it is.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, syntaxError(s, fmt.Sprintf("%q is not a number", num))
	}
	r.Mul(r, new(big.Rat).SetUint64(mult))
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Lsh(rem, 1).Cmp(r.Denom()) >= 0 { // round half up
		q.Add(q, big.NewInt(1))
	}
	if !q.IsUint64() {
		return 0, &sizeError{fmt.Sprintf("size %q is too large: the most is %d bytes (about %s)", s, uint64(1<<64-1), FormatBytes(1<<64-1)), ErrRange}
	}
	return q.Uint64(), nil
}

// binaryUnits are FormatBytes's units above bytes, each 1024 of the last.
var binaryUnits = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// FormatBytes writes n with the largest binary unit that keeps the number at
// least 1, rounded to two decimals without trailing zeros: "0 B", "1023 B",
// "1.5 KiB", "10 GiB".
func FormatBytes(n uint64) string {
	const k = 1024
	if n < k {
		return strconv.FormatUint(n, 10) + " B"
	}
	v := float64(n) / k
	i := 0
	// Step up while the number would print as 1024 or more.
	for i < len(binaryUnits)-1 && v >= k-0.005 {
		v /= k
		i++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " " + binaryUnits[i]
}
