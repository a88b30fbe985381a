//go:build !unix

package benchutil

// CPUSeconds returns 0 where the process's CPU time is not read (no
// getrusage): benchmarks then report no CPU figures.
func CPUSeconds() float64 { return 0 }
