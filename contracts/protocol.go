package contracts

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/p2p"
)

// errMismatch means a CONSIGN or MIRROR carried a contract other than the
// one offered (or one naming another provider).
var errMismatch = errors.New("contracts: contract is not the one offered")

// errNoAnswer means a request went out on a stream but its answer did not
// come (the stream was reset or timed out): the peer may have acted on it.
var errNoAnswer = errors.New("contracts: request sent, no answer came")

// exchange opens a contract stream to p, sends req and reads the one
// response, within StreamTimeout. Once the stream is open, a failure wraps
// errNoAnswer.
func exchange(ctx context.Context, h *p2p.Host, to peer.ID, req *pb.Request) (*pb.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	pr := h.Protocol()
	s, err := pr.NewStream(ctx, to, Protocol)
	if err != nil {
		return nil, err
	}
	if err := pr.WriteMsg(s, req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("%w: write request to %s: %w", errNoAnswer, to, err)
	}
	_ = s.CloseWrite()
	var resp pb.Response
	if err := pr.ReadMsg(s, &resp, MaxFrame); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("%w: read response of %s: %w", errNoAnswer, to, err)
	}
	_ = s.Close()
	return &resp, nil
}

// codes maps the sentinels to wire codes, first match wins.
var codes = []struct {
	err  error
	code pb.Code
}{
	{ErrMalformed, pb.Code_CODE_MALFORMED},
	{ErrSignature, pb.Code_CODE_SIGNATURE},
	{ErrTopicMismatch, pb.Code_CODE_MALFORMED},
	{ErrNotMember, pb.Code_CODE_NOT_MEMBER},
	{ErrNotAuthorised, pb.Code_CODE_NOT_ASSIGNED},
	{ErrNotOwner, pb.Code_CODE_NOT_OWNER},
	{ErrNoRoom, pb.Code_CODE_NO_ROOM},
	{ErrNotFound, pb.Code_CODE_UNKNOWN},
	{ErrExpired, pb.Code_CODE_EXPIRED},
	{ErrClockSkew, pb.Code_CODE_MALFORMED},
	{ErrForbiddenChange, pb.Code_CODE_FORBIDDEN},
	{errMismatch, pb.Code_CODE_MISMATCH},
	{ErrBusy, pb.Code_CODE_BUSY},
}

// refusal turns an error into the wire refusal that names it; a full
// disk also sets disk_full.
func refusal(err error) *pb.Refusal {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			full := c.code == pb.Code_CODE_NO_ROOM && errors.Is(err, ErrDiskFull)
			return &pb.Refusal{Code: c.code, Reason: err.Error(), DiskFull: full}
		}
	}
	return &pb.Refusal{Code: pb.Code_CODE_UNSPECIFIED, Reason: err.Error()}
}

// refusalError turns a received refusal into an error wrapping ErrRefused
// and the sentinel of its code (ErrDiskFull, which wraps ErrNoRoom, for a
// NO_ROOM that says disk_full).
func refusalError(rf *pb.Refusal) error {
	reason := rf.GetReason()
	if len(reason) > MaxReason {
		reason = reason[:MaxReason] + "..."
	}
	if rf.GetCode() == pb.Code_CODE_NO_ROOM && rf.GetDiskFull() {
		return fmt.Errorf("%w (%w): %s", ErrRefused, ErrDiskFull, reason)
	}
	for _, c := range codes {
		if c.code == rf.GetCode() && c.err != ErrTopicMismatch {
			return fmt.Errorf("%w (%w): %s", ErrRefused, c.err, reason)
		}
	}
	return fmt.Errorf("%w: %s: %s", ErrRefused, rf.GetCode(), reason)
}
