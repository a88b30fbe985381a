package faults

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// long reports whether the long form runs (make faults).
func long() bool { return os.Getenv("FAULTS_LONG") != "" }

// pick returns the short or the long form's figure.
func pick(short, longForm int) int {
	if long() {
		return longForm
	}
	return short
}

// figures are one scenario's results.
type figures struct {
	Scenario     string
	Attempted    int
	Acknowledged int
	Lost         int
	Corrupted    int
	Recover      time.Duration // longest time to recover from one fault
	Note         string
}

var reportMu sync.Mutex

// report logs a scenario's figures, fails the test on a loss or a corrupted
// read, and appends the figures as a table row to $FAULTS_REPORT when set.
func report(t *testing.T, f figures) {
	t.Helper()
	row := fmt.Sprintf("| %s | %d | %d | %d | %d | %s | %s |", f.Scenario, f.Attempted, f.Acknowledged, f.Lost, f.Corrupted,
		f.Recover.Round(time.Millisecond), f.Note)
	t.Log(row)
	if f.Lost != 0 || f.Corrupted != 0 {
		t.Errorf("%s: %d acknowledged operations lost, %d corrupted reads served; both must be 0", f.Scenario, f.Lost, f.Corrupted)
	}
	path := os.Getenv("FAULTS_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer fh.Close()
	fmt.Fprintln(fh, row)
}
