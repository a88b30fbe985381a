package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
)

// Errors callers branch on. Chain refusals keep their chain sentinel, so
// errors.Is(err, chain.ErrBucketFull), chain.ErrObjectTooLarge,
// chain.ErrUploadingBlocked, chain.ErrBlacklisted and chain.ErrBagNotFound
// work on what Put and Get return; the message names the bag and the next
// step.
var (
	// ErrNoProviderReachable means no storage provider of the bag could be
	// reached, or every one refused or failed; the error is a
	// *NoProviderError naming every peer tried and why it failed.
	ErrNoProviderReachable = errors.New("client: no storage provider reachable")

	// ErrNotAccepted means every chunk was stored and bound but no provider
	// accepted the object on chain before the accept deadline. Running the
	// same upload again resumes and waits again.
	ErrNotAccepted = errors.New("client: object not accepted on chain in time")

	// ErrFileChanged means the file changed while it was being uploaded:
	// a chunk read again did not hash to the CID computed before.
	ErrFileChanged = errors.New("client: file changed during upload")

	// ErrEmpty means the content has no bytes; the data directory stores no
	// empty objects.
	ErrEmpty = errors.New("client: empty content cannot be stored")

	// ErrNoKey means an upload was asked of a client without a signing key.
	ErrNoKey = errors.New("client: no member key configured; uploads register objects on chain and need one")

	// ErrRedundancy means an upload asked for more copies (WithRedundancy)
	// than the bag has storage buckets to keep them, or for a minimum
	// (WithMinRedundancy) above the copies it makes.
	ErrRedundancy = errors.New("client: more copies asked than the upload can make")

	// ErrInvalidOption means an option was given a value it cannot take
	// (WithChunkSize(-1), WithWindow(0), ...): New, or the call the option
	// was given to, fails with it before it does anything, naming the
	// option.
	ErrInvalidOption = errors.New("client: invalid option")

	// ErrClosed means the Client was closed (Put, Get, Open, Upload and
	// the rest after Client.Close) or the Reader was (its reads after
	// Reader.Close).
	ErrClosed = errors.New("client: closed")

	// ErrCommitted means the upload was already committed or aborted.
	ErrCommitted = errors.New("client: upload already committed or aborted")

	// ErrNotFound means no provider holds a block of the object asked for.
	ErrNotFound = errors.New("client: content not found on any provider")

	// ErrProvidersBusy means every provider that could deliver a block
	// answered busy (its memory budget for all readers was spent) for as
	// long as the download waits for one (WithBusyWait), or that an upload
	// was left with too few providers because some answered busy (their
	// budget for all uploaders spent) for as long as it waits: retry later,
	// or wait longer. It wraps fetch.ErrProviderBusy; an upload's
	// *NoProviderError matches it when a provider it gave up was busy.
	ErrProvidersBusy = fmt.Errorf("client: storage providers busy: %w", fetch.ErrProviderBusy)
)

// PeerError is the outcome of trying one provider.
type PeerError struct {
	Peer peer.ID
	Err  error
}

// NoProviderError says which providers of a bag were tried and why none
// could be used. It matches ErrNoProviderReachable.
type NoProviderError struct {
	Bag chain.BagID
	// Need is how many providers the operation needed, Have how many it got.
	Need, Have int
	// Tried lists every provider tried with its failure.
	Tried []PeerError
	// Op says what was being done: "upload", "download".
	Op string
}

// Error implements error.
func (e *NoProviderError) Error() string {
	var b strings.Builder
	bag := "bag " + e.Bag.String()
	if e.Bag == "" {
		bag = "any bag"
	}
	switch {
	case e.Have > 0:
		fmt.Fprintf(&b, "%s: %s: only %d of %d storage providers usable", e.Op, bag, e.Have, e.Need)
	case e.Op == "upload":
		fmt.Fprintf(&b, "%s: %s: no storage provider reachable", e.Op, bag)
	default:
		fmt.Fprintf(&b, "%s: %s: no storage provider could deliver it", e.Op, bag)
	}
	if len(e.Tried) == 0 {
		b.WriteString(" (the chain names no active operator with a peer ID for the bag's storage buckets; ask the storage lead to check `satchel bag show ")
		b.WriteString(e.Bag.String())
		b.WriteString("`)")
		return b.String()
	}
	b.WriteString("; tried ")
	for i, t := range e.Tried {
		if i > 0 {
			b.WriteString(", ")
		}
		if t.Peer == "" {
			fmt.Fprintf(&b, "%v", t.Err)
			continue
		}
		fmt.Fprintf(&b, "%s (%v)", shortPeer(t.Peer), t.Err)
	}
	b.WriteString(e.hint())
	return b.String()
}

// hint is the advice that ends the message, matching why the providers
// tried failed: busy (wait longer or retry later), refused by the provider
// for its disk being full or for another reason it gave (its operator must
// act), or unreachable (check that it runs).
func (e *NoProviderError) hint() string {
	busy, all := e.busy()
	if e.Op == "upload" && all {
		return "; the busy providers were storing others' data for longer than the upload waits: run the command again later to resume, or wait longer (--busy-wait, WithBusyWait)"
	}
	var full, refused []string
	unreachable := false
	for _, t := range e.Tried {
		var r *store.RefusedError
		switch {
		case errors.Is(t.Err, ErrProvidersBusy):
		case errors.As(t.Err, &r) && diskFull(r):
			full = append(full, shortPeer(t.Peer))
		case errors.As(t.Err, &r):
			refused = append(refused, shortPeer(t.Peer))
		default:
			unreachable = true
		}
	}
	var hints []string
	if len(full) > 0 {
		hints = append(hints, fmt.Sprintf("%s reported its disk full: its operator must free space before it stores more", strings.Join(full, ", ")))
	}
	if len(refused) > 0 {
		hints = append(hints, fmt.Sprintf("%s refused the upload for the reason it gave: ask its operator", strings.Join(refused, ", ")))
	}
	if unreachable {
		hints = append(hints, "check that the providers run and are reachable")
	}
	if busy {
		hints = append(hints, "the busy ones were storing others' data for longer than the upload waits (--busy-wait, WithBusyWait)")
	}
	if e.Op == "upload" {
		hints = append(hints, "then run the command again to resume")
	}
	return "; " + strings.Join(hints, "; ")
}

// diskFull reports whether a provider's refusal says its disk is full: by
// the reply's no_space flag, or, from a provider that predates it, by the
// reason's words (it passes on its store's write error, whose text is the
// system's).
func diskFull(e *store.RefusedError) bool {
	return e.NoSpace || saysDiskFull(e.Reason)
}

// saysDiskFull reports whether a provider's reason says its disk is full,
// in the words of the systems that pass on such a write error.
func saysDiskFull(reason string) bool {
	r := strings.ToLower(reason)
	for _, s := range []string{"no space left on device", "disk full", "disk is full", "disk quota exceeded", "not enough space on the disk"} {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

// noRoom reports whether a push failed with err because the provider's
// disk is full: its reply had no_space set or, from a provider that
// predates the flag, a reason saying so. No retry can succeed until its
// operator frees space, so the upload gives the provider up at once.
func noRoom(err error) bool {
	var refused *store.RefusedError
	if errors.As(err, &refused) {
		return diskFull(refused)
	}
	return errors.Is(err, store.ErrNoSpace)
}

// hopNoRoom is noRoom for a pipeline hop's failure err, as its head
// relayed it: with no_space, or a reason saying the disk is full.
func hopNoRoom(err error) bool {
	return errors.Is(err, store.ErrNoSpace) || saysDiskFull(err.Error())
}

// Is makes a NoProviderError match ErrNoProviderReachable, and
// ErrProvidersBusy when every provider tried was given up for being busy
// (busy alone: asking again later is then the whole remedy).
func (e *NoProviderError) Is(target error) bool {
	if target == ErrProvidersBusy {
		_, all := e.busy()
		return all
	}
	return target == ErrNoProviderReachable
}

// busy reports whether some provider tried, and whether every one, was
// given up for being busy.
func (e *NoProviderError) busy() (some, all bool) {
	n := 0
	for _, t := range e.Tried {
		if errors.Is(t.Err, ErrProvidersBusy) {
			n++
		}
	}
	return n > 0, n > 0 && n == len(e.Tried)
}

// shortPeer abbreviates a peer ID for messages: enough to tell peers apart.
func shortPeer(p peer.ID) string {
	s := p.String()
	if len(s) > 16 {
		return s[:6] + "…" + s[len(s)-6:]
	}
	return s
}

// explainChain wraps a chain error with what the client was doing, keeping
// the chain sentinel and its message (which names the cause and the next
// step) reachable with errors.Is. It names bag, when there is one and
// neither what nor the chain's message names it already.
func explainChain(what string, bag chain.BagID, err error) error {
	if b := string(bag); b != "" && !strings.Contains(what, b) && !strings.Contains(err.Error(), b) {
		return fmt.Errorf("bag %s: %s: %w", bag, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// PanicError is a panic of a function the caller gave the client (the
// writer given to a download) that the client recovered in a goroutine of
// its own, where it would have ended the program. Its message names the
// panic and the function that panicked, with its file and line; Stack holds
// the whole stack of the goroutine that panicked (it is also logged at
// Warn). When the panic's value is an error, errors.Is and errors.As see
// it.
type PanicError struct {
	// What names the function that panicked.
	What string
	// Value is what the function panicked with.
	Value any
	// Stack is the goroutine's stack at the panic (runtime/debug.Stack).
	Stack []byte
}

// Error names the function, the panic's value and where it panicked.
func (e *PanicError) Error() string {
	msg := fmt.Sprintf("client: %s panicked: %v", e.What, e.Value)
	if site := panicSite(e.Stack); site != "" {
		msg += " (in " + site + ")"
	}
	return msg
}

// Unwrap returns the panic's value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// panicSite returns the function that called panic in a debug.Stack
// dump, and its file and line: the frame after the runtime's "panic(...)",
// or "" when the dump has none.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i := 0; i+3 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "panic(") {
			fn := lines[i+2]
			if j := strings.LastIndex(fn, "("); j > 0 {
				fn = fn[:j]
			}
			loc := strings.TrimSpace(lines[i+3])
			if j := strings.Index(loc, " +0x"); j > 0 {
				loc = loc[:j]
			}
			return fn + " at " + loc
		}
	}
	return ""
}
