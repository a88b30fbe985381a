package main

import (
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
)

// TestStopSignalsHonourNohup: a closed terminal (SIGHUP) ends a command
// cleanly, except when it was started with SIGHUP ignored, as nohup does —
// there it must stay ignored.
func TestStopSignalsHonourNohup(t *testing.T) {
	if !slices.Contains(stopSignals(), os.Signal(syscall.SIGHUP)) {
		t.Fatal("SIGHUP is not among the signals that end a command cleanly")
	}
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	if slices.Contains(stopSignals(), os.Signal(syscall.SIGHUP)) {
		t.Fatal("SIGHUP ignored (nohup) but asked for: the command would end when the terminal closes")
	}
}
