package testnet

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/provider"
)

// Timeouts of New and Wait. They are generous: the race detector on two
// shared cores is slow, and a wait returns as soon as its condition holds.
const (
	// SetupTimeout bounds starting a network.
	SetupTimeout = 90 * time.Second
	// WaitTimeout bounds each Wait.
	WaitTimeout = 45 * time.Second
)

// LogEnv names the environment variable that, when set, sends the logs of
// every part of a network made by New to stderr at debug level.
const LogEnv = "SATCHEL_TESTNET_LOG"

// An Option configures a network made by New.
type Option func(*Config)

// Providers sets the number of storage providers (default 3).
func Providers(n int) Option { return func(c *Config) { c.Providers = n } }

// Validators sets the number of chain validators (each a node in this
// process).
func Validators(n int) Option { return func(c *Config) { c.Validators = n } }

// ProviderOptions adds options to every provider's provider.New call.
func ProviderOptions(opts ...provider.Option) Option {
	return func(c *Config) { c.ProviderOptions = append(c.ProviderOptions, opts...) }
}

// Configure changes the Config directly, for what has no Option.
func Configure(fn func(*Config)) Option { return fn }

// New starts a network in a temporary directory for the test and closes it
// when the test ends, failing the test if it cannot start. Set LogEnv to
// see its logs.
func New(t testing.TB, opts ...Option) *Network {
	t.Helper()
	cfg := Config{}
	if os.Getenv(LogEnv) != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), SetupTimeout)
	defer cancel()
	n, err := Start(ctx, t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("testnet: close: %v", err)
		}
	})
	return n
}

// Wait polls cond until it holds, failing the test after WaitTimeout with
// what it was waiting for. It is for state that announces no change, such
// as what a provider's store holds.
func Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := ctxsleep.Poll(ctx, cond); err != nil {
		t.Fatalf("testnet: waiting for %s: %v", what, err)
	}
}
