package node

import (
	"fmt"
	"log/slog"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// openMachine opens the default machine: the goleveldb-backed data
// directory of package chain/state in dir.
func openMachine(dir string, log *slog.Logger) (chain.Machine, error) {
	m, err := state.New(dir, state.WithLogger(log.With("component", "chain/state")))
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", dir, err)
	}
	return m, nil
}
