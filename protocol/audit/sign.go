package audit

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// Domain separators: what a signature covers is the tag followed by the
// encoded message, so a signature over one kind of message never verifies
// as another (or as anything else the libp2p key signs).
const (
	challengeTag = "satchel/audit/challenge/v1\n"
	resultTag    = "satchel/audit/result/v1\n"
)

// SignChallenge signs c with key, the challenger's libp2p private key, whose peer ID
// must be c.Challenger.
func SignChallenge(key crypto.PrivKey, c *pb.Challenge) (*pb.SignedChallenge, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("audit: encode challenge: %w", err)
	}
	sig, err := key.Sign(append([]byte(challengeTag), body...))
	if err != nil {
		return nil, fmt.Errorf("audit: sign challenge: %w", err)
	}
	return &pb.SignedChallenge{Challenge: body, Signature: sig}, nil
}

// OpenChallenge checks a signed challenge received from remote and returns
// it: the signature must verify with the key of the challenger it names,
// the challenger must be remote, the provider self, the nonce and samples
// within limits and the time within ClockWindow of now. It does not check
// for replays (the Handler does).
func OpenChallenge(sc *pb.SignedChallenge, remote, self peer.ID, now time.Time) (*pb.Challenge, error) {
	var c pb.Challenge
	if err := proto.Unmarshal(sc.GetChallenge(), &c); err != nil {
		return nil, fmt.Errorf("%w: challenge does not decode: %v", ErrInvalid, err)
	}
	challenger, err := peer.IDFromBytes(c.Challenger)
	if err != nil {
		return nil, fmt.Errorf("%w: challenger is not a peer ID: %v", ErrInvalid, err)
	}
	if challenger != remote {
		return nil, fmt.Errorf("%w: challenge names challenger %s but came from %s", ErrBadSignature, challenger, remote)
	}
	if err := verifyBy(challenger, challengeTag, sc.GetChallenge(), sc.GetSignature()); err != nil {
		return nil, err
	}
	provider, err := peer.IDFromBytes(c.Provider)
	if err != nil || provider != self {
		return nil, fmt.Errorf("%w: challenge is for provider %s, not %s", ErrInvalid, provider, self)
	}
	if n := len(c.Nonce); n < MinNonce || n > MaxNonce {
		return nil, fmt.Errorf("%w: %d-byte nonce, want %d to %d", ErrInvalid, n, MinNonce, MaxNonce)
	}
	at := time.UnixMilli(c.TimeUnixMs)
	if d := now.Sub(at); d > ClockWindow || d < -ClockWindow {
		return nil, fmt.Errorf("%w: challenge made at %s is outside the %s window around %s", ErrInvalid, at.UTC().Format(time.RFC3339), ClockWindow, now.UTC().Format(time.RFC3339))
	}
	if err := checkSamples(c.Samples); err != nil {
		return nil, err
	}
	if _, err := cid.Cast(c.Root); err != nil {
		return nil, fmt.Errorf("%w: root is not a CID: %v", ErrInvalid, err)
	}
	return &c, nil
}

func checkSamples(ss []*pb.Sample) error {
	if len(ss) == 0 || len(ss) > MaxSamples {
		return fmt.Errorf("%w: %d samples, want 1 to %d", ErrInvalid, len(ss), MaxSamples)
	}
	for _, s := range ss {
		if s.Index > 1<<40 || s.Offset > MaxChunkSize || s.Length > MaxChunkSize {
			return fmt.Errorf("%w: sample %d+%d of chunk %d is out of range", ErrInvalid, s.Offset, s.Length, s.Index)
		}
	}
	return nil
}

// verifyBy checks that sig is signer's signature over tag||body. The key is
// the one the peer ID embeds (ed25519 identities do); other key types are
// refused rather than trusted.
func verifyBy(signer peer.ID, tag string, body, sig []byte) error {
	pub, err := signer.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: %s carries no public key: %v", ErrBadSignature, signer, err)
	}
	ok, err := pub.Verify(append([]byte(tag), body...), sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: signature is not %s's", ErrBadSignature, signer)
	}
	return nil
}

// SignResult encodes r and signs it with key, the auditor's libp2p private
// key, whose peer ID must be r.Auditor. The bytes are what is published on
// Topic.
func SignResult(key crypto.PrivKey, r *pb.AuditResult) ([]byte, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("audit: result key: %w", err)
	}
	if got, err := peer.IDFromBytes(r.Auditor); err != nil || got != id {
		return nil, fmt.Errorf("%w: result names auditor %s but is signed by %s", ErrInvalid, got, id)
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode result: %w", err)
	}
	sig, err := key.Sign(append([]byte(resultTag), body...))
	if err != nil {
		return nil, fmt.Errorf("audit: sign result: %w", err)
	}
	return proto.Marshal(&pb.SignedResult{Result: body, Signature: sig})
}

// OpenResult decodes a published result and checks its auditor's
// signature. It returns an error wrapping ErrBadSignature or ErrInvalid.
// It does not check the result's time or whether it was seen before
// (ResultFilter does).
func OpenResult(data []byte) (*pb.AuditResult, error) {
	r, _, err := openResult(data)
	return r, err
}

// openResult is OpenResult, also returning the signed bytes of the result.
func openResult(data []byte) (*pb.AuditResult, []byte, error) {
	if len(data) > maxResultSize {
		return nil, nil, fmt.Errorf("%w: %d-byte result exceeds %d", ErrInvalid, len(data), maxResultSize)
	}
	var sr pb.SignedResult
	if err := proto.Unmarshal(data, &sr); err != nil {
		return nil, nil, fmt.Errorf("%w: result does not decode: %v", ErrInvalid, err)
	}
	var r pb.AuditResult
	if err := proto.Unmarshal(sr.Result, &r); err != nil {
		return nil, nil, fmt.Errorf("%w: result does not decode: %v", ErrInvalid, err)
	}
	auditor, err := peer.IDFromBytes(r.Auditor)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: auditor is not a peer ID: %v", ErrInvalid, err)
	}
	if _, err := peer.IDFromBytes(r.Provider); err != nil {
		return nil, nil, fmt.Errorf("%w: provider is not a peer ID: %v", ErrInvalid, err)
	}
	if r.Verdict != pb.Verdict_VERDICT_PASS && r.Verdict != pb.Verdict_VERDICT_FAIL {
		return nil, nil, fmt.Errorf("%w: verdict %v", ErrInvalid, r.Verdict)
	}
	if err := verifyBy(auditor, resultTag, sr.Result, sr.Signature); err != nil {
		return nil, nil, err
	}
	return &r, sr.Result, nil
}

// maxResultSize bounds a published result (a few hundred bytes in practice).
const maxResultSize = 8 << 10
