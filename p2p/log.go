package p2p

import (
	"context"
	"log/slog"
)

// quietLibrary returns l for a third-party library (gossipsub) whose Info
// messages are routine chatter to a Satchel user ("processloop shutting
// down"): records below Warn are logged at Debug, warnings and errors as
// they are.
func quietLibrary(l *slog.Logger) *slog.Logger { return slog.New(demoteHandler{l.Handler()}) }

// demoteHandler logs records below Warn at Debug.
type demoteHandler struct{ inner slog.Handler }

func (h demoteHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, demote(level))
}

func (h demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h demoteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteHandler{h.inner.WithAttrs(attrs)}
}

func (h demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{h.inner.WithGroup(name)}
}

func demote(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}
