//go:build race

package distributor_test

// raceEnabled is whether the race detector runs: it makes sync.Pool drop
// items at random, so allocation counts say nothing then.
const raceEnabled = true
