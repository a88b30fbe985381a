package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// An upload's answer to busy providers: a provider whose budget for all
// peers is spent refuses a chunk or a bind busy (store.ErrProviderBusy),
// which is no failure. The uploader asks it again after a pause, as reads
// wait (fetch.BusyWait), for up to the client's busy wait; only then is
// the provider given up for a spare.

// waitBusy pauses after target t refused what (a chunk, a bind) busy with
// err, and reports whether to ask it again: false once bw's wait is spent
// (t is then given up with a busyPushError) or ctx ends.
func (p *pusher) waitBusy(ctx context.Context, t *target, bw *fetch.BusyWait, what string, err error) bool {
	p.c.log.Debug("storage provider busy; asking again after a pause", "peer", t.cand.peer, "what", what, "waited", bw.Waited())
	ok, werr := bw.Wait(ctx)
	if werr != nil {
		return false
	}
	if !ok {
		t.mu.Lock()
		t.givenUpBusy = true
		t.mu.Unlock()
		p.kill(t, busyPushError(what, bw.Waited(), err))
		return false
	}
	return true
}

// dropGivenUpBusy asks the targets given up busy to drop the upload's
// session (DROP) once the upload is bound elsewhere: they are reachable,
// and their share of a contract's room and disk would otherwise wait for
// the grant to lapse. It is best effort, bounded by dropTimeout.
func (p *pusher) dropGivenUpBusy() {
	p.dropSessions(func(t *target) bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.givenUpBusy && !t.bound
	})
}

// busyPushError is why a target that answered busy for the whole busy wait
// is given up.
func busyPushError(what string, waited time.Duration, err error) error {
	return &pushBusyError{what: what, waited: waited, err: err}
}

// pushBusyError is why a target that answered what (a chunk, a bind) busy
// with err for the whole busy wait (waited) was given up. It matches
// ErrProvidersBusy, and err (store.ErrProviderBusy).
type pushBusyError struct {
	what   string
	waited time.Duration
	err    error
}

// Error names what was refused busy, for how long, and the provider's reason.
func (e *pushBusyError) Error() string {
	return fmt.Sprintf("%s: busy storing others' data for %s (%v)", e.what, e.waited.Round(time.Millisecond), e.err)
}

// Is makes it match ErrProvidersBusy.
func (e *pushBusyError) Is(target error) bool { return target == ErrProvidersBusy }

// Unwrap returns the provider's refusal.
func (e *pushBusyError) Unwrap() error { return e.err }

// bindAttempts is how many times a BIND answered FAILED is sent in all: a
// provider that could not record the object or its contract (a write
// error) answers FAILED and asks to be bound again (bindAgain), and
// binding is idempotent.
const bindAttempts = 3

// bindAgain reports whether a BIND that failed with r is worth sending
// again: when the provider said so (the reply's retry: it could not record
// the object or its contract), not when it said the failure would repeat
// (a chunk missing, another root, a full disk). A provider that predates
// the flag says neither: then every FAILED but a full disk is tried again,
// as before the flag.
func bindAgain(r *store.RefusedError) bool {
	switch {
	case r.Status != storepb.Status_STATUS_FAILED:
		return false
	case r.RetrySaid:
		return r.Retry
	}
	return !r.NoSpace
}

// bindOne binds the object on t, asking again while t answers busy, for
// up to the client's busy wait (then t is given up), and up to
// bindAttempts times in all while it answers FAILED asking to be bound
// again (bindAgain).
func (p *pusher) bindOne(ctx context.Context, t *target, chunks []chunker.ChunkInfo) error {
	bw := fetch.BusyWait{Max: p.c.opts.busyWait}
	failed := 0
	for {
		what := fmt.Sprintf("bind object %d", p.object)
		conn, gen, err := p.conn(ctx, t)
		if err != nil {
			if ctx.Err() == nil && t.alive() && p.waitReconnect(ctx, t, what, openFailed(err)) {
				continue
			}
			return err
		}
		bctx, cancel := context.WithTimeout(ctx, bindTimeout)
		err = conn.Bind(bctx, store.BindRequest{Session: t.cand.session, Bag: p.bag.String(), Object: p.object, Chunks: chunks})
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if connLost(err) {
			t.resetConn(gen)
			if p.waitReconnect(ctx, t, what, err) {
				continue
			}
			return err
		}
		var refused *store.RefusedError
		if errors.As(err, &refused) && bindAgain(refused) {
			if failed++; failed >= bindAttempts || !ctxsleep.Sleep(ctx, time.Duration(failed)*bindRetryPause) {
				return err
			}
			p.c.log.Debug("bind failed; binding again", "peer", t.cand.peer, "object", p.object, "err", err)
			continue
		}
		if !errors.Is(err, store.ErrProviderBusy) {
			return err
		}
		if !p.waitBusy(ctx, t, &bw, what, err) {
			return err
		}
	}
}

// bindRetryPause is the pause before a failed BIND is sent again, doubled
// for the third.
const bindRetryPause = 500 * time.Millisecond
