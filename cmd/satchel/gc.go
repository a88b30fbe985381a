package main

import (
	"os"
	"runtime/debug"
)

// A transfer (put or get) allocates its chunks as they pass, ~1 MiB each,
// while little stays live (the fetch or push window): with Go's default
// GOGC=100 the collector runs every few tens of MiB moved. tuneGC makes it
// run a quarter as often, within a memory limit that keeps the command's
// heap (and so its RSS) under transferMemoryLimit whatever the object's
// size. A GOGC or GOMEMLIMIT in the environment wins.
const (
	transferGCPercent   = 400
	transferMemoryLimit = 96 << 20
)

// tuneGC sets the collector for a transfer command (see transferGCPercent).
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(transferGCPercent)
	debug.SetMemoryLimit(transferMemoryLimit)
}
