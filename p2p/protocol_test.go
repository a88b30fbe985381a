package p2p_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/satchel-net/satchel/internal/logbuf"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

const echoProtocol protocol.ID = "/satchel/test-echo/1.0.0"

// pair starts two hosts on a mocknet, each with its own metrics registry and a
// log captured in a buffer.
type pair struct {
	net  *testnet.Network
	regs [2]*prometheus.Registry
	logs [2]*logbuf.Buffer
}

func newPair(t *testing.T, opts ...p2p.Option) *pair {
	t.Helper()
	p := &pair{}
	for i := range p.regs {
		p.regs[i] = prometheus.NewRegistry()
		p.logs[i] = &logbuf.Buffer{}
	}
	p.net = testnet.NewMock(t, 2, 0, testnet.WithHostOptions(func(i int) []p2p.Option {
		return append([]p2p.Option{
			p2p.WithMetrics(p.regs[i]),
			p2p.WithLogger(slog.New(slog.NewTextHandler(p.logs[i], &slog.HandlerOptions{Level: slog.LevelDebug}))),
		}, opts...)
	}))
	return p
}

// call opens a stream from host 0 to host 1, sends req and reads one reply.
func (p *pair) call(ctx context.Context, id protocol.ID, req string) (string, error) {
	client := p.net.Host(0).Protocol()
	s, err := client.NewStream(ctx, p.net.Host(1).ID(), id)
	if err != nil {
		return "", err
	}
	defer s.Close()
	if err := client.WriteMsg(s, wrapperspb.String(req)); err != nil {
		return "", err
	}
	if err := s.CloseWrite(); err != nil {
		return "", err
	}
	var resp wrapperspb.StringValue
	if err := client.ReadMsg(s, &resp, 0); err != nil {
		return "", err
	}
	return resp.Value, nil
}

func echo(proto *p2p.Protocol) p2p.HandlerFunc {
	return func(ctx context.Context, s network.Stream) error {
		var req wrapperspb.StringValue
		if err := proto.ReadMsg(s, &req, 1024); err != nil {
			return err
		}
		return proto.WriteMsg(s, wrapperspb.String(strings.ToUpper(req.Value)))
	}
}

func TestProtocolRoundTrip(t *testing.T) {
	p := newPair(t)
	server := p.net.Host(1).Protocol()
	server.SetHandler(echoProtocol, echo(server))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		got, err := p.call(ctx, echoProtocol, "hello")
		if err != nil || got != "HELLO" {
			t.Fatalf("call = %q, %v; want HELLO", got, err)
		}
	}

	// Both sides counted three frames each way, under the protocol's label.
	// The server counts its reply once its write returns, which can be
	// after the client read it: wait for that count.
	serverSent := func() float64 {
		return metricValue(t, p.regs[1], "satchel_p2p_frames_sent_total", "protocol", string(echoProtocol))
	}
	for deadline := time.Now().Add(10 * time.Second); serverSent() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	for i, dir := range []string{"sent", "received"} {
		if got := metricValue(t, p.regs[0], "satchel_p2p_frames_"+dir+"_total", "protocol", string(echoProtocol)); got != 3 {
			t.Errorf("client frames %s = %v, want 3", dir, got)
		}
		other := []string{"received", "sent"}[i]
		if got := metricValue(t, p.regs[1], "satchel_p2p_frames_"+other+"_total", "protocol", string(echoProtocol)); got != 3 {
			t.Errorf("server frames %s = %v, want 3", other, got)
		}
	}
	// "hello" is 7 bytes of protobuf plus a 1-byte prefix.
	if got := metricValue(t, p.regs[0], "satchel_p2p_frame_bytes_sent_total", "protocol", string(echoProtocol)); got != 3*8 {
		t.Errorf("client bytes sent = %v, want 24", got)
	}
	// Each host is connected to the other one.
	for i, reg := range p.regs {
		if got := metricValue(t, reg, "satchel_p2p_peers_connected"); got != 1 {
			t.Errorf("host %d: peers_connected = %v, want 1", i, got)
		}
	}

	// After RemoveHandler the protocol is no longer offered.
	server.RemoveHandler(echoProtocol)
	if _, err := p.call(ctx, echoProtocol, "hello"); err == nil {
		t.Fatal("call after RemoveHandler succeeded")
	}
}

func TestProtocolHandlerErrorResetsStream(t *testing.T) {
	p := newPair(t)
	server := p.net.Host(1).Protocol()
	server.SetHandler(echoProtocol, echo(server))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// 2000 bytes is over the handler's 1024-byte limit: its ReadMsg fails, the
	// handler returns the error, and the client sees a reset, not a reply or
	// a clean end.
	_, err := p.call(ctx, echoProtocol, strings.Repeat("x", 2000))
	if !errors.Is(err, network.ErrReset) {
		t.Fatalf("call = %v, want a stream reset", err)
	}
	waitMetric(t, p.regs[1], 1, "satchel_p2p_handler_failures_total", "protocol", string(echoProtocol), "kind", "error")
	if got := metricValue(t, p.regs[1], "satchel_p2p_frame_errors_total", "protocol", string(echoProtocol), "kind", "too_large"); got != 1 {
		t.Errorf("frame_errors_total{kind=too_large} = %v, want 1", got)
	}
}

func TestProtocolHandlerPanicIsContained(t *testing.T) {
	p := newPair(t)
	server := p.net.Host(1).Protocol()
	server.SetHandler("/satchel/test-panic/1.0.0", func(ctx context.Context, s network.Stream) error {
		var req wrapperspb.StringValue
		_ = server.ReadMsg(s, &req, 0)
		panic("handler bug: " + req.Value)
	})
	server.SetHandler(echoProtocol, echo(server))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Were the panic to escape, it would crash the test binary here.
	if _, err := p.call(ctx, "/satchel/test-panic/1.0.0", "boom"); !errors.Is(err, network.ErrReset) {
		t.Fatalf("call to a panicking handler = %v, want a stream reset", err)
	}
	waitMetric(t, p.regs[1], 1, "satchel_p2p_handler_failures_total", "protocol", "/satchel/test-panic/1.0.0", "kind", "panic")
	log := p.logs[1].String()
	if !strings.Contains(log, "stream handler panicked") || !strings.Contains(log, "handler bug: boom") {
		t.Errorf("the panic was not logged with its value:\n%s", log)
	}
	// The host keeps serving.
	if got, err := p.call(ctx, echoProtocol, "still here"); err != nil || got != "STILL HERE" {
		t.Fatalf("call after the panic = %q, %v", got, err)
	}
}

func TestProtocolHandlerDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p := newPair(t, p2p.WithStreamTimeout(timeout))
	server := p.net.Host(1).Protocol()
	type result struct {
		readErr, ctxErr error
		elapsed         time.Duration
	}
	done := make(chan result, 1)
	server.SetHandler(echoProtocol, func(ctx context.Context, s network.Stream) error {
		start := time.Now()
		var req wrapperspb.StringValue
		err := server.ReadMsg(s, &req, 0) // the client never writes
		<-ctx.Done()
		done <- result{err, ctx.Err(), time.Since(start)}
		return err
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.net.Host(0).Protocol().NewStream(ctx, p.net.Host(1).ID(), echoProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Opening a stream is lazy: one byte of a frame prefix makes the server
	// side start, and the handler then waits for the rest.
	if _, err := s.Write([]byte{0x85}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.readErr == nil {
			t.Fatal("the handler's read succeeded")
		}
		if !errors.Is(r.ctxErr, context.DeadlineExceeded) {
			t.Fatalf("handler ctx ended with %v, want DeadlineExceeded", r.ctxErr)
		}
	case <-ctx.Done():
		t.Fatal("the handler was not stopped by its deadline")
	}
}

// Close returns only after a running handler has returned.
func TestCloseWaitsForHandlers(t *testing.T) {
	p := newPair(t)
	started, cancelled, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	p.net.Host(1).Protocol().SetHandler(echoProtocol, func(ctx context.Context, s network.Stream) error {
		close(started)
		<-ctx.Done() // Close cancels it
		close(cancelled)
		<-release // a handler still winding down (flushing, say)
		returned.Store(true)
		return ctx.Err()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.net.Host(0).Protocol().NewStream(ctx, p.net.Host(1).ID(), echoProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the handler did not start")
	}
	closed := make(chan error, 1)
	go func() { closed <- p.net.Host(1).Close() }()
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("Close did not cancel the handler's context")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a handler was still running")
	default:
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return after the handler did")
	}
	if !returned.Load() {
		t.Fatal("Close returned before the handler")
	}
}

// metricValue returns the value of the series of name whose labels include
// the given name/value pairs, or -1 if there is none.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// waitMetric waits for a series to reach want. Handlers finish after the
// remote side has seen the stream reset, so the counter may lag the call.
func waitMetric(t *testing.T, g prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for metricValue(t, g, name, labels...) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, metricValue(t, g, name, labels...), want)
		}
		<-tick.C
	}
}

// A long-lived handler (WithIdleTimeout) has no whole-stream deadline: its
// stream lives while frames move and ends after the idle timeout without
// one. RemoveHandler resets its streams and returns once they have ended.
func TestIdleHandlerAndRemove(t *testing.T) {
	p := newPair(t, p2p.WithStreamTimeout(200*time.Millisecond))
	server := p.net.Host(1).Protocol()
	const idle = 2 * time.Second
	served := make(chan int, 1)
	var running atomic.Bool
	server.SetHandler(echoProtocol, func(ctx context.Context, s network.Stream) error {
		running.Store(true)
		defer running.Store(false)
		fr, fw := server.NewFrameReader(s, 1024, idle), server.NewFrameWriter(s, idle)
		n := 0
		for {
			var req wrapperspb.StringValue
			if err := fr.ReadMsg(&req); err != nil {
				served <- n
				return err
			}
			n++
			if err := fw.WriteMsg(wrapperspb.String(strings.ToUpper(req.Value))); err != nil {
				return err
			}
			if err := fw.Flush(); err != nil {
				return err
			}
		}
	}, p2p.WithIdleTimeout(idle))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := p.net.Host(0).Protocol()
	s, err := client.NewStream(ctx, p.net.Host(1).ID(), echoProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	fr, fw := p2p.NewFrameReader(s, 1024), p2p.NewFrameWriter(s)
	// Frames keep moving past the host's 200 ms stream timeout.
	deadline := time.Now().Add(600 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := fw.WriteMsg(wrapperspb.String("ping")); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if err := fw.Flush(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var resp wrapperspb.StringValue
		if err := fr.ReadMsg(&resp); err != nil || resp.Value != "PING" {
			t.Fatalf("frame %d: %q, %v (a long-lived stream cut by the whole-stream timeout?)", i, resp.Value, err)
		}
	}
	server.RemoveHandler(echoProtocol)
	if running.Load() {
		t.Fatal("RemoveHandler returned while the handler was still running")
	}
	select {
	case n := <-served:
		if n == 0 {
			t.Fatal("the handler served no frame")
		}
	default:
		t.Fatal("the handler did not end")
	}
	waitMetric(t, p.regs[1], 1, "satchel_p2p_handler_failures_total", "protocol", string(echoProtocol), "kind", "error")
}

// Go contains a panic in a goroutine a handler started, counts it like a
// handler's own and returns it as an error.
func TestGoContainsPanic(t *testing.T) {
	p := newPair(t)
	server := p.net.Host(1).Protocol()
	err := server.Go(echoProtocol, p.net.Host(0).ID(), func() { panic("worker bug") })
	if !errors.Is(err, p2p.ErrHandlerPanic) || !strings.Contains(err.Error(), "worker bug") {
		t.Fatalf("Go of a panicking function = %v, want ErrHandlerPanic", err)
	}
	waitMetric(t, p.regs[1], 1, "satchel_p2p_handler_failures_total", "protocol", string(echoProtocol), "kind", "panic")
	if err := server.Go(echoProtocol, p.net.Host(0).ID(), func() {}); err != nil {
		t.Fatalf("Go of a function that returns: %v", err)
	}
}
