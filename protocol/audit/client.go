package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// Target names the object an audit challenges: its bag and ID on chain and
// its content ID as the chain records it (the root every proof must reach).
type Target struct {
	Bag    string
	Object uint64
	Root   cid.Cid
}

// Sample asks for chunk Index of the object (from 0): the whole chunk when
// Length is 0, else bytes [Offset, Offset+Length) of it.
type Sample struct {
	Index  int
	Offset uint64
	Length uint64
}

// Outcome is what one audit found.
type Outcome struct {
	// Pass is true when every sample was answered and verified.
	Pass bool
	// Err says why the audit failed (nil when it passed); it wraps
	// ErrNotHeld, ErrCorrupt, ErrRefused, ErrBadAnswer, ErrTimeout or
	// ErrUnreachable.
	Err error
	// Challenge is the challenge sent (its nonce and time identify it).
	Challenge *pb.Challenge
	// BytesIn and BytesOut count the frames' payloads received and sent.
	BytesIn, BytesOut int
	// Took is how long the audit took.
	Took time.Duration
}

// Client challenges providers over /satchel/audit/1.0.0. It signs its
// challenges with the host's libp2p key. It is safe for concurrent use.
type Client struct {
	h       host.Host
	key     crypto.PrivKey
	local   LocalChunks
	now     func() time.Time
	timeout time.Duration
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithLocalChunks gives the client its own copies of chunks, needed for
// range samples (see LocalChunks). A peer auditor holds the chunks it
// audits.
func WithLocalChunks(fn LocalChunks) ClientOption { return func(c *Client) { c.local = fn } }

// WithClock sets the clock that stamps challenges (default time.Now); tests
// use it to make stale challenges.
func WithClock(now func() time.Time) ClientOption { return func(c *Client) { c.now = now } }

// WithAnswerTimeout sets how long an answer may take before the audit
// fails as too late (default AnswerTimeout).
func WithAnswerTimeout(d time.Duration) ClientOption {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// NewClient returns a challenger on h. h's private key must be in its
// peerstore (it is for every libp2p host built with an identity).
func NewClient(h host.Host, opts ...ClientOption) (*Client, error) {
	key := h.Peerstore().PrivKey(h.ID())
	if key == nil {
		return nil, errors.New("audit: the host's private key is not in its peerstore")
	}
	c := &Client{h: h, key: key, now: time.Now, timeout: AnswerTimeout}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Audit challenges provider p for samples of t and verifies the answer
// against t.Root. A provider that cannot be reached, refuses, answers late
// or wrongly fails the audit: the Outcome says so. Audit returns an error
// only when the audit could not be judged: bad arguments, or ctx ended.
func (c *Client) Audit(ctx context.Context, p peer.ID, t Target, samples []Sample) (Outcome, error) {
	start := time.Now()
	ch, err := c.challenge(p, t, samples)
	if err != nil {
		return Outcome{}, err
	}
	sc, err := SignChallenge(c.key, ch)
	if err != nil {
		return Outcome{}, err
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out := Outcome{Challenge: ch}
	out.Err = c.exchange(actx, p, t, sc, ch, &out)
	out.Took = time.Since(start)
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	dl, _ := actx.Deadline()
	late := actx.Err() != nil || !time.Now().Before(dl) // the stream's deadline may fire first
	if out.Err != nil && late && !errors.Is(out.Err, ErrTimeout) {
		out.Err = fmt.Errorf("%w: no complete answer from %s within %s: %w", ErrTimeout, p, c.timeout, out.Err)
	}
	out.Pass = out.Err == nil
	return out, nil
}

// challenge builds the challenge for p.
func (c *Client) challenge(p peer.ID, t Target, samples []Sample) (*pb.Challenge, error) {
	if !t.Root.Defined() {
		return nil, fmt.Errorf("%w: target has no root CID", ErrInvalid)
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ch := &pb.Challenge{
		Bag: t.Bag, Object: t.Object, Root: t.Root.Bytes(), Nonce: nonce,
		TimeUnixMs: c.now().UnixMilli(), Challenger: []byte(c.h.ID()), Provider: []byte(p),
	}
	for _, s := range samples {
		if s.Index < 0 {
			return nil, fmt.Errorf("%w: negative chunk index %d", ErrInvalid, s.Index)
		}
		if s.Length > 0 && c.local == nil {
			return nil, fmt.Errorf("%w: range samples need WithLocalChunks", ErrInvalid)
		}
		ch.Samples = append(ch.Samples, &pb.Sample{Index: uint64(s.Index), Offset: s.Offset, Length: s.Length})
	}
	if err := checkSamples(ch.Samples); err != nil {
		return nil, err
	}
	return ch, nil
}

// exchange sends the signed challenge and reads and verifies the answer.
func (c *Client) exchange(ctx context.Context, p peer.ID, t Target, sc *pb.SignedChallenge, ch *pb.Challenge, out *Outcome) error {
	s, err := c.h.NewStream(ctx, p, p2p.AuditProtocol)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, p, err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	fw := p2p.NewFrameWriter(s)
	err = fw.WriteMsg(sc)
	if err == nil {
		err = fw.Flush()
	}
	if err != nil {
		return fmt.Errorf("%w: send challenge to %s: %v", ErrUnreachable, p, err)
	}
	out.BytesOut = len(sc.Challenge) + len(sc.Signature)
	// The write side stays open until the answer is read: the provider
	// watches it, and stops preparing the answer when the stream is reset.
	fr := p2p.NewFrameReader(s, MaxFrame)
	var hdr pb.AnswerHeader
	if err := fr.ReadMsg(&hdr); err != nil {
		return fmt.Errorf("%w: answer header from %s: %v", ErrBadAnswer, p, err)
	}
	if err := statusErr(&hdr); err != nil {
		return err
	}
	if string(hdr.Nonce) != string(ch.Nonce) {
		return fmt.Errorf("%w: answer echoes another nonce", ErrBadAnswer)
	}
	if int(hdr.Count) != len(ch.Samples) {
		return fmt.Errorf("%w: %d proofs announced for %d samples", ErrBadAnswer, hdr.Count, len(ch.Samples))
	}
	for i, smp := range ch.Samples {
		var sp pb.SampleProof
		raw, err := fr.ReadFrame()
		if err == nil {
			err = unmarshalProof(raw, &sp)
		}
		if err != nil {
			return fmt.Errorf("%w: proof %d from %s: %v", ErrBadAnswer, i, p, err)
		}
		out.BytesIn += len(raw)
		if err := VerifySample(t.Root, smp, &sp, c.local); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalProof decodes one SampleProof frame and bounds its fields.
func unmarshalProof(raw []byte, sp *pb.SampleProof) error {
	if err := proto.Unmarshal(raw, sp); err != nil {
		return err
	}
	if len(sp.Data) > MaxChunkSize {
		return fmt.Errorf("%d bytes of data exceed the %d-byte chunk limit", len(sp.Data), MaxChunkSize)
	}
	return nil
}

func statusErr(h *pb.AnswerHeader) error {
	switch h.Status {
	case pb.AuditStatus_AUDIT_STATUS_OK:
		return nil
	case pb.AuditStatus_AUDIT_STATUS_NOT_FOUND:
		return fmt.Errorf("%w: %s", ErrNotHeld, h.Reason)
	case pb.AuditStatus_AUDIT_STATUS_FAILED:
		return fmt.Errorf("%w: %s", ErrCorrupt, h.Reason)
	case pb.AuditStatus_AUDIT_STATUS_REFUSED:
		return fmt.Errorf("%w: %s", ErrRefused, h.Reason)
	default:
		return fmt.Errorf("%w: status %v", ErrBadAnswer, h.Status)
	}
}
