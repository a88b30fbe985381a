// Command satchel is the one binary of the Satchel network: storage providers,
// distributors, the data directory chain, and the tools leads, operators and
// members use. Run `satchel --help` for the command groups.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
