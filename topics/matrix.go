package topics

import (
	"fmt"
	"strconv"
	"strings"
)

// Criterion is a column of the topic matrix: one thing a storage contract
// asks for. Its value is the byte offset of its descriptor in an encoded
// topic, so Size is byte 1, right after the prefix.
type Criterion uint8

// The four criteria of the seed's matrix, in encoding order.
const (
	// Size is the size of the data to be stored.
	Size Criterion = iota + 1
	// Duration is how long the data should be stored.
	Duration
	// Availability is the uptime the contract requires for retrieval.
	Availability
	// Speed is the throughput desired for retrieval.
	Speed
)

var criteria = [...]Criterion{Size, Duration, Availability, Speed}

var criterionNames = [...]string{
	Size:         "size",
	Duration:     "duration",
	Availability: "availability",
	Speed:        "speed",
}

// Criteria returns the four criteria in the order they are encoded. The slice
// is a copy: no caller can reorder the encoding for everyone else.
func Criteria() []Criterion {
	c := criteria
	return c[:]
}

// Valid reports whether c is one of the four criteria.
func (c Criterion) Valid() bool { return c >= Size && c <= Speed }

// String returns the criterion's lower-case name, such as "size".
func (c Criterion) String() string {
	if !c.Valid() {
		return fmt.Sprintf("Criterion(%d)", uint8(c))
	}
	return criterionNames[c]
}

// Descriptor is the opcode for the degree to which a criterion must be met.
type Descriptor uint8

// The three descriptors of the seed. The zero value is not a descriptor, so a
// Topic with an unset criterion fails Validate instead of meaning "low".
const (
	// Low is the least demanding degree.
	Low Descriptor = 0x01
	// Medium is the middle degree.
	Medium Descriptor = 0x02
	// High is the most demanding degree; Classify also puts everything above
	// the top of its advisory range here.
	High Descriptor = 0x03
)

var descriptorNames = [...]string{Low: "low", Medium: "medium", High: "high"}

// wantDescriptor ends every descriptor error, so the fix is always in view.
const wantDescriptor = "want low (0x01), medium (0x02) or high (0x03)"

// Valid reports whether d is Low, Medium or High.
func (d Descriptor) Valid() bool { return d >= Low && d <= High }

// String returns the descriptor's lower-case name, such as "medium".
func (d Descriptor) String() string {
	if !d.Valid() {
		return fmt.Sprintf("Descriptor(0x%02x)", uint8(d))
	}
	return descriptorNames[d]
}

// MarshalText encodes d as its name, so JSON shows "low" rather than 1.
func (d Descriptor) MarshalText() ([]byte, error) {
	if !d.Valid() {
		return nil, &topicError{fmt.Sprintf("descriptor 0x%02x: %s", uint8(d), wantDescriptor), ErrDescriptor}
	}
	return []byte(d.String()), nil
}

// UnmarshalText decodes anything ParseDescriptor accepts.
func (d *Descriptor) UnmarshalText(b []byte) error {
	v, err := ParseDescriptor(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDescriptor reads a descriptor by name ("low", "medium", "high", in any
// case) or by opcode as a Go integer literal ("1", "0x01"). The error wraps
// ErrDescriptor.
func ParseDescriptor(s string) (Descriptor, error) {
	for d := Low; d <= High; d++ {
		if strings.EqualFold(s, descriptorNames[d]) {
			return d, nil
		}
	}
	if n, err := strconv.ParseUint(s, 0, 8); err == nil && Descriptor(n).Valid() {
		return Descriptor(n), nil
	}
	return 0, &topicError{fmt.Sprintf("descriptor %q: %s", s, wantDescriptor), ErrDescriptor}
}

// matrix is the seed's table: the unit each criterion is given in and the
// upper bounds of Low, Medium and High in that unit. Classification and Range
// both read it, so what is printed and what is decided cannot drift apart.
var matrix = [...]struct {
	unit  string
	upper [3]float64
}{
	Size:         {"MB", [3]float64{8, 16, 32}},
	Duration:     {"days", [3]float64{30, 90, 270}},
	Availability: {"%", [3]float64{50, 80, 99}},
	Speed:        {"Mbps", [3]float64{6, 12, 32}},
}

// Range is the advisory span of one descriptor for one criterion, in the unit
// the seed's table uses: MB (10^6 bytes), days (24 h), percent uptime, or
// Mbps (10^6 bits per second).
//
// A descriptor covers the values above Min up to and including Max; Low
// includes Min (zero) as well. High's Max is the seed's advisory top, but
// Classify puts larger requirements in High too.
type Range struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Unit string  `json:"unit"`
}

// String formats r the way the seed's table does, such as "8-16 MB" or
// "50-80%". The zero Range formats as "".
func (r Range) String() string {
	if r.Unit == "" {
		return ""
	}
	sep := " "
	if r.Unit == "%" {
		sep = ""
	}
	return strconv.FormatFloat(r.Min, 'f', -1, 64) + "-" +
		strconv.FormatFloat(r.Max, 'f', -1, 64) + sep + r.Unit
}

// Range returns the advisory range d stands for on criterion c, or the zero
// Range if either is invalid.
func (d Descriptor) Range(c Criterion) Range {
	if !d.Valid() || !c.Valid() {
		return Range{}
	}
	m := matrix[c]
	r := Range{Max: m.upper[d-Low], Unit: m.unit}
	if d > Low {
		r.Min = m.upper[d-Low-1]
	}
	return r
}
