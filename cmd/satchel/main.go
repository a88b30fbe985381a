// Command satchel is the one binary of the Satchel network: storage providers,
// distributors, the data directory chain, and the tools leads, operators and
// members use. Run `satchel --help` for the command groups.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// cpuProfileEnv names a file to write a CPU profile of the whole command to
// (for example of `satchel devnet` while the CLI bench runs against it).
const cpuProfileEnv = "SATCHEL_CPUPROFILE"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	stopProfile := startCPUProfile(os.Getenv(cpuProfileEnv))
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// stopSignals are the signals that end a command cleanly (a get removes its
// temporary file, a server closes its stores). SIGHUP (the terminal closed)
// is among them unless the command was started with it ignored, as under
// nohup: asking to be notified of it would undo that.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// startCPUProfile profiles the process into path, when not empty, until the
// returned function is called.
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: %s=%s: %v; running without a profile\n", cpuProfileEnv, path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
