package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// This file keeps the last header the proven reads of a command verified,
// as CometBFT's light client keeps its trusted store: the next command
// starts from it instead of the configured root (chainTrust) when it is
// newer, so proven reads go on after the configured root has grown older
// than the trusting period. It is only a hint: the header is checked again
// (same root and chain, its hash on the endpoint's chain, within the
// trusting period) and one that fails is skipped with a warning, the
// configured root used (rpc.Trust.Saved).

// trustedHeaderFile is where the saved header lives: beside the keys under
// the home, as state of this machine's client.
func trustedHeaderFile(cfg Config) string {
	return filepath.Join(cfg.Home, "trusted-header.json")
}

// maxTrustedHeaderFile bounds what is read of the file (a saved header is
// a few hundred bytes).
const maxTrustedHeaderFile = 64 << 10

// trustClock is the clock headers are checked against. Tests move it on
// to age the trust roots.
var trustClock = time.Now

// loadTrustedHeader reads the saved header at path: nil when there is none,
// or (with a logged warning) when the file cannot be read or is not one.
func loadTrustedHeader(path string, log *slog.Logger) *rpc.SavedRoot {
	s, err := readTrustedHeader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		log.Warn("ignoring the saved trusted header; proven reads start from the configured root", "file", path, "err", err)
		return nil
	}
	return s
}

func readTrustedHeader(path string) (*rpc.SavedRoot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTrustedHeaderFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTrustedHeaderFile {
		return nil, fmt.Errorf("larger than %d bytes", maxTrustedHeaderFile)
	}
	var s rpc.SavedRoot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("not a saved header: %w", err)
	}
	switch {
	case s.Height <= 0, len(s.Hash) != 32, s.ChainID == "", s.Root == "", s.Time.IsZero():
		return nil, fmt.Errorf("not a saved header: want chainID, height, a 32-byte hash, time and root (height %d, hash of %d bytes)", s.Height, len(s.Hash))
	}
	return &s, nil
}

// saveTrustedHeader writes s to path atomically (a temporary file renamed
// over it), so a reader sees the old header or the new, never a part.
func saveTrustedHeader(path string, s rpc.SavedRoot) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// keepTrustedHeader saves the latest header p verified unless the one saved
// before (prev) is as good, and returns what the file now holds (prev when
// the save failed); a failure is logged, never the command's. prev is as
// good when it is the latest header itself, or when p's verification
// started from it and the latest header is less than trustSaveInterval
// younger: a saved header only has to stay well within the trusting period
// (weeks), so a command run every few minutes does not rewrite and fsync
// the file each time. (prev's time comes from the file, which verification
// does not check: a time after the latest header's saves.) When p did not
// start from prev (it failed: say, the chain was started anew, or another
// command saved a header meanwhile), the latest header replaces it.
func keepTrustedHeader(path string, p *rpc.Proven, prev *rpc.SavedRoot, log *slog.Logger) *rpc.SavedRoot {
	s := p.Saved()
	if prev != nil && prev.Root == s.Root && prev.Height == s.Height && bytes.Equal(prev.Hash, s.Hash) {
		return prev
	}
	if prev != nil && p.FromSaved() {
		if age := s.Time.Sub(prev.Time); age >= 0 && age < trustSaveInterval {
			return prev
		}
	}
	if err := saveTrustedHeader(path, s); err != nil {
		log.Warn("could not save the latest verified header; the next command starts from the configured root", "file", path, "err", err)
		return prev
	}
	return &s
}
