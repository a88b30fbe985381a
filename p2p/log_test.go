package p2p

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestQuietLibraryDemotesInfo(t *testing.T) {
	var buf bytes.Buffer
	l := quietLibrary(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Info("processloop shutting down")
	l.With("component", "pubsub").Warn("peer misbehaving")
	out := buf.String()
	if strings.Contains(out, "processloop") {
		t.Fatalf("an Info record was logged at Info: %q", out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "component=pubsub") {
		t.Fatalf("a warning was lost: %q", out)
	}
}
