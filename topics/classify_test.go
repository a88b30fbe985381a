package topics

import (
	"errors"
	"math"
	"testing"
	"time"
)

const (
	mb  = 1_000_000
	mib = 1 << 20
)

func TestClassifySize(t *testing.T) {
	tests := []struct {
		n    uint64
		want Descriptor
	}{
		{0, Low},
		{1, Low},
		{5 * mib, Low},
		{8*mb - 1, Low},
		{8 * mb, Low}, // a boundary belongs to the lower descriptor
		{8*mb + 1, Medium},
		{8 * mib, Medium}, // MB is decimal: 8 MiB is over 8 MB
		{16 * mb, Medium},
		{16*mb + 1, High},
		{32 * mb, High},
		{32*mb + 1, High}, // above the advisory top: clamped
		{1 << 40, High},
		{math.MaxUint64, High},
	}
	for _, tt := range tests {
		if got := ClassifySize(tt.n); got != tt.want {
			t.Errorf("ClassifySize(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestClassifyDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		d    time.Duration
		want Descriptor
	}{
		{0, Low},
		{time.Nanosecond, Low},
		{30*day - 1, Low},
		{30 * day, Low},
		{30*day + 1, Medium},
		{60 * day, Medium},
		{90 * day, Medium},
		{90*day + 1, High},
		{270 * day, High},
		{270*day + 1, High},
		{10 * 365 * day, High},
		{math.MaxInt64, High},
	}
	for _, tt := range tests {
		if got, err := ClassifyDuration(tt.d); err != nil || got != tt.want {
			t.Errorf("ClassifyDuration(%v) = %v, %v; want %v", tt.d, got, err, tt.want)
		}
	}
	for _, d := range []time.Duration{-1, -day, math.MinInt64} {
		if got, err := ClassifyDuration(d); !errors.Is(err, ErrRequirement) {
			t.Errorf("ClassifyDuration(%v) = %v, %v; want ErrRequirement", d, got, err)
		}
	}
}

func TestClassifyAvailability(t *testing.T) {
	tests := []struct {
		p    float64
		want Descriptor
	}{
		{0, Low},
		{math.Copysign(0, -1), Low}, // -0 is zero, not negative
		{49.999, Low},
		{50, Low},
		{math.Nextafter(50, 100), Medium},
		{80, Medium},
		{math.Nextafter(80, 100), High},
		{99, High},
		{99.9, High}, // above the advisory top: clamped
		{99.999, High},
		{100, High},
	}
	for _, tt := range tests {
		if got, err := ClassifyAvailability(tt.p); err != nil || got != tt.want {
			t.Errorf("ClassifyAvailability(%v) = %v, %v; want %v", tt.p, got, err, tt.want)
		}
	}
	bad := map[float64]string{
		-0.001:                   "availability -0.001% is negative, want a percentage from 0 to 100",
		math.Nextafter(100, 200): "availability 100.00000000000001% is above 100%, want a percentage from 0 to 100",
		101:                      "availability 101% is above 100%, want a percentage from 0 to 100",
		math.Inf(1):              "availability +Inf% is above 100%, want a percentage from 0 to 100",
		math.Inf(-1):             "availability -Inf% is negative, want a percentage from 0 to 100",
		math.NaN():               "availability is NaN, want a percentage from 0 to 100",
	}
	for p, msg := range bad {
		_, err := ClassifyAvailability(p)
		if !errors.Is(err, ErrRequirement) || err.Error() != msg {
			t.Errorf("ClassifyAvailability(%v) error = %v, want %s", p, err, msg)
		}
	}
}

func TestClassifySpeed(t *testing.T) {
	tests := []struct {
		mbps float64
		want Descriptor
	}{
		{0, Low},
		{0.5, Low},
		{6, Low},
		{math.Nextafter(6, 7), Medium},
		{12, Medium},
		{12.000001, High},
		{20, High},
		{32, High},
		{1000, High}, // above the advisory top: clamped
		{math.MaxFloat64, High},
	}
	for _, tt := range tests {
		if got, err := ClassifySpeed(tt.mbps); err != nil || got != tt.want {
			t.Errorf("ClassifySpeed(%v) = %v, %v; want %v", tt.mbps, got, err, tt.want)
		}
	}
	for _, v := range []float64{-1, -math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := ClassifySpeed(v); !errors.Is(err, ErrRequirement) {
			t.Errorf("ClassifySpeed(%v) = %v, %v; want ErrRequirement", v, got, err)
		}
	}
}

func TestClassify(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name string
		r    Requirements
		want string
	}{
		{"zero", Requirements{}, "0f01010101"},
		{"web asset", Requirements{5 * mib, 60 * day, 99, 20}, "0f01020303"},
		{"backup", Requirements{30 * mb, 365 * day, 10, 1}, "0f03030101"},
		{"all boundaries", Requirements{16 * mb, 30 * day, 80, 6}, "0f02010201"},
		{"all past the top", Requirements{1 << 30, 1000 * day, 100, 100}, "0f03030303"},
	}
	for _, tt := range tests {
		got, err := Classify(tt.r)
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: Classify(%+v) = %v, %v; want %s", tt.name, tt.r, got, err, tt.want)
		}
	}
	bad := []Requirements{
		{Duration: -1},
		{Availability: 101},
		{Availability: math.NaN()},
		{SpeedMbps: -1},
	}
	for _, r := range bad {
		if got, err := Classify(r); !errors.Is(err, ErrRequirement) || got != (Topic{}) {
			t.Errorf("Classify(%+v) = %+v, %v; want ErrRequirement", r, got, err)
		}
	}
}

// TestClassifyMatchesRange checks that every classified value lies in the
// range its descriptor prints, so the table and the decision cannot disagree.
func TestClassifyMatchesRange(t *testing.T) {
	r := Requirements{SizeBytes: 5 * mib, Duration: 60 * 24 * time.Hour, Availability: 99, SpeedMbps: 20}
	want := map[Criterion]float64{Size: 5.24288, Duration: 60, Availability: 99, Speed: 20}
	tp, err := Classify(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Criteria() {
		v := r.Value(c)
		if v != want[c] {
			t.Errorf("Value(%v) = %v, want %v", c, v, want[c])
		}
		rg := tp.Descriptor(c).Range(c)
		if !(v > rg.Min || v == 0) || v > rg.Max {
			t.Errorf("%v: value %v is outside %v's range %v", c, v, tp.Descriptor(c), rg)
		}
	}
	if r.Value(0) != 0 {
		t.Errorf("Value(0) = %v, want 0", r.Value(0))
	}
}
