package topics

import (
	"fmt"
	"math"
	"time"
)

// Units of the seed's table. MB is decimal, as the seed's "mb" and every
// storage and network vendor use it; callers with MiB convert to bytes first.
const (
	megabyte = 1_000_000
	day      = 24 * time.Hour
)

// Requirements are the concrete needs of a contract, which Classify maps
// onto the matrix. The zero value is valid and classifies as all Low.
type Requirements struct {
	// SizeBytes is the size of the data to store, in bytes.
	SizeBytes uint64
	// Duration is how long the data must be stored.
	Duration time.Duration
	// Availability is the uptime required for retrieval, in percent from 0
	// to 100.
	Availability float64
	// SpeedMbps is the desired retrieval throughput in megabits (10^6 bits)
	// per second.
	SpeedMbps float64
}

// Value returns r's requirement for c in the unit of the seed's table (MB,
// days, percent, Mbps), the unit Descriptor.Range uses, so the two can be
// printed side by side. It returns 0 if c is not a criterion.
func (r Requirements) Value(c Criterion) float64 {
	switch c {
	case Size:
		return float64(r.SizeBytes) / megabyte
	case Duration:
		return float64(r.Duration) / float64(day)
	case Availability:
		return r.Availability
	case Speed:
		return r.SpeedMbps
	}
	return 0
}

// Classify returns the contract topic for r: each criterion classified as
// ClassifySize, ClassifyDuration, ClassifyAvailability and ClassifySpeed do.
// The error, for the first criterion that cannot be classified, wraps
// ErrRequirement.
func Classify(r Requirements) (Topic, error) {
	t := New(ClassifySize(r.SizeBytes), 0, 0, 0)
	var err error
	if t.Duration, err = ClassifyDuration(r.Duration); err != nil {
		return Topic{}, err
	}
	if t.Availability, err = ClassifyAvailability(r.Availability); err != nil {
		return Topic{}, err
	}
	if t.Speed, err = ClassifySpeed(r.SpeedMbps); err != nil {
		return Topic{}, err
	}
	return t, nil
}

// ClassifySize returns the descriptor for storing n bytes, with MB meaning
// 10^6 bytes: up to 8 MB (8,000,000 bytes) is Low, up to 16 MB Medium, and
// anything larger High. 8 MiB (8,388,608 bytes) is therefore Medium.
func ClassifySize(n uint64) Descriptor {
	// Compare whole bytes, not float megabytes, so the boundary is exact.
	up := matrix[Size].upper
	return classify(n, uint64(up[0]*megabyte), uint64(up[1]*megabyte))
}

// ClassifyDuration returns the descriptor for storing data for d, with a day
// of 24 hours: up to 30 days is Low, up to 90 days Medium, and anything longer
// High. A negative d is an error wrapping ErrRequirement.
func ClassifyDuration(d time.Duration) (Descriptor, error) {
	if d < 0 {
		return 0, &topicError{fmt.Sprintf("duration %v is negative", d), ErrRequirement}
	}
	up := matrix[Duration].upper
	return classify(d, time.Duration(up[0])*day, time.Duration(up[1])*day), nil
}

// ClassifyAvailability returns the descriptor for an uptime of percent: up to
// 50% is Low, up to 80% Medium, and above that High, including 99.9% and 100%
// beyond the seed's advisory top of 99%. A negative, NaN or above-100 value
// is an error wrapping ErrRequirement.
func ClassifyAvailability(percent float64) (Descriptor, error) {
	switch {
	case math.IsNaN(percent):
		return 0, &topicError{"availability is NaN, want a percentage from 0 to 100", ErrRequirement}
	case percent < 0:
		return 0, &topicError{fmt.Sprintf("availability %g%% is negative, want a percentage from 0 to 100", percent), ErrRequirement}
	case percent > 100:
		return 0, &topicError{fmt.Sprintf("availability %g%% is above 100%%, want a percentage from 0 to 100", percent), ErrRequirement}
	}
	up := matrix[Availability].upper
	return classify(percent, up[0], up[1]), nil
}

// ClassifySpeed returns the descriptor for a retrieval throughput of mbps
// megabits per second: up to 6 Mbps is Low, up to 12 Mbps Medium, and
// anything faster High. A negative, NaN or infinite value is an error
// wrapping ErrRequirement.
func ClassifySpeed(mbps float64) (Descriptor, error) {
	switch {
	case math.IsNaN(mbps) || math.IsInf(mbps, 0):
		return 0, &topicError{fmt.Sprintf("speed %g Mbps is not a finite number", mbps), ErrRequirement}
	case mbps < 0:
		return 0, &topicError{fmt.Sprintf("speed %g Mbps is negative", mbps), ErrRequirement}
	}
	up := matrix[Speed].upper
	return classify(mbps, up[0], up[1]), nil
}

// classify applies the boundary rule of the whole package: a value equal to
// an upper bound belongs to the lower descriptor, and everything past
// Medium's bound is High, since High is the most demanding degree the matrix
// has and a larger requirement still needs the nodes that serve it.
func classify[T uint64 | time.Duration | float64](v, low, medium T) Descriptor {
	switch {
	case v <= low:
		return Low
	case v <= medium:
		return Medium
	}
	return High
}
