package node

import (
	"context"
	"log/slog"
	"sync/atomic"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cmtLogger adapts slog to CometBFT's logger. CometBFT is chatty: its Info
// messages (one per block, per peer, per step) go to slog at Debug, its Debug
// messages below Debug (LevelDebug-4, shown only by a handler set that low),
// and its Error messages, often routine peer trouble, at Warn — except
// while the node stops, when closing listeners and connections makes
// CometBFT report errors that are none: those go to Debug.
type cmtLogger struct {
	l        *slog.Logger
	stopping *atomic.Bool
}

var _ cmtlog.Logger = cmtLogger{}

const levelTrace = slog.LevelDebug - 4

func newCmtLogger(l *slog.Logger, stopping *atomic.Bool) cmtlog.Logger {
	return cmtLogger{l: l.With("component", "cometbft"), stopping: stopping}
}

func (c cmtLogger) Debug(msg string, keyvals ...any) { c.log(levelTrace, msg, keyvals) }
func (c cmtLogger) Info(msg string, keyvals ...any)  { c.log(slog.LevelDebug, msg, keyvals) }

func (c cmtLogger) Error(msg string, keyvals ...any) {
	level := slog.LevelWarn
	if c.stopping.Load() {
		level = slog.LevelDebug
	}
	c.log(level, msg, keyvals)
}

func (c cmtLogger) With(keyvals ...any) cmtlog.Logger {
	return cmtLogger{l: c.l.With(keyvals...), stopping: c.stopping}
}

func (c cmtLogger) log(level slog.Level, msg string, keyvals []any) {
	ctx := context.Background()
	if !c.l.Enabled(ctx, level) {
		return
	}
	c.l.Log(ctx, level, msg, keyvals...)
}

// discardLogger returns a logger that drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
