package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// listenSetting is an address a command listens on and the flag (and the
// config key, if any) that chose it, so an address in use is reported in
// the operator's terms: which flag to change.
type listenSetting struct {
	flag, key, addr string
	port            bool // the flag is a port, not a HOST:PORT
}

// addrInUseError says which setting chose an address another program holds.
type addrInUseError struct {
	listenSetting
	err error
}

func (e *addrInUseError) Error() string {
	change := "pass another " + e.flag + " HOST:PORT"
	if e.port {
		change = "pass another " + e.flag
	}
	if e.key != "" {
		change += " (or set " + e.key + " in the config)"
	}
	return fmt.Sprintf("%s %s: address already in use, another program (another satchel node?) listens there; stop it, or %s",
		e.flag, e.addr, change)
}

func (e *addrInUseError) Unwrap() error { return e.err }

// inUse rewrites err when it says an address of ls is in use: with one
// setting any such error is its; with several, the one whose address the
// error names. A setting with no address (that listener is off) is never
// blamed. Other errors pass through unchanged.
func inUse(err error, ls ...listenSetting) error {
	if err == nil || !isAddrInUse(err) {
		return err
	}
	for _, l := range ls {
		if l.addr != "" && (len(ls) == 1 || strings.Contains(err.Error(), l.addr)) {
			return &addrInUseError{listenSetting: l, err: err}
		}
	}
	return err
}

// isAddrInUse reports whether err is a listen failing on a taken address;
// the text decides when a library flattened the error chain (CometBFT's
// RPC listener does).
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
