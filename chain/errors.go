package chain

import (
	"errors"
	"fmt"
)

// Error is a runtime error of the data directory. Code is stable across
// versions and travels in TxResult.Code and in query results, so every client
// maps it back to the same sentinel with ErrorFromCode. Msg is the message a
// user sees: it names the cause and the next step.
//
// Two *Error values match under errors.Is when their codes are equal, so a
// detailed error made with Errorf still matches its sentinel:
//
//	errors.Is(err, chain.ErrBucketFull)
//
// Every not-found code also matches ErrNotFound.
type Error struct {
	Code uint32 `json:"code"`
	Msg  string `json:"msg"`
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Is reports whether target is a *Error with the same code, or ErrNotFound
// for any not-found code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Code == e.Code {
		return true
	}
	return t.Code == CodeNotFound && isNotFoundCode(e.Code)
}

// Stable runtime error codes. 0 is success. Never renumber: clients and
// stored results depend on them.
const (
	CodeOK       uint32 = 0
	CodeInternal uint32 = 1

	// Transaction envelope and authorisation.
	CodeBadTx        uint32 = 2
	CodeBadSignature uint32 = 3
	CodeBadNonce     uint32 = 4
	CodeWrongChain   uint32 = 5
	CodeUnauthorized uint32 = 6
	CodeInvalid      uint32 = 7
	CodeUnknownMsg   uint32 = 8
	CodeUnknownQuery uint32 = 9

	// Not found: 100–199.
	CodeNotFound                   uint32 = 100
	CodeBagNotFound                uint32 = 101
	CodeStorageBucketNotFound      uint32 = 102
	CodeFamilyNotFound             uint32 = 103
	CodeDistributionBucketNotFound uint32 = 104
	CodeObjectNotFound             uint32 = 105
	CodeMemberNotFound             uint32 = 106
	CodeChannelNotFound            uint32 = 107
	CodeWorkerNotFound             uint32 = 108

	// Storage and data objects: 200–299.
	CodeBucketFull          uint32 = 200
	CodeVoucherLimitTooHigh uint32 = 201
	CodeObjectTooLarge      uint32 = 202
	CodeBlacklisted         uint32 = 203
	CodeUploadingBlocked    uint32 = 204
	CodeZeroSize            uint32 = 205
	CodeNoStorageBuckets    uint32 = 206
	CodeBlacklistFull       uint32 = 207
	CodeBadContentID        uint32 = 208

	// Buckets, operators, families, placement: 300–399.
	CodeBucketHasBags      uint32 = 300
	CodeBucketHasOperator  uint32 = 301
	CodeFamilyHasBuckets   uint32 = 302
	CodeInvitationPending  uint32 = 303
	CodeNoInvitation       uint32 = 304
	CodeWorkerBusy         uint32 = 305
	CodeTooFewBuckets      uint32 = 306
	CodeBucketsPerBagLimit uint32 = 307
	CodeNotAcceptingBags   uint32 = 308
	CodeNotOperator        uint32 = 309
	CodeBagAlreadyInBucket uint32 = 310
	CodeBagNotInBucket     uint32 = 311
	CodeFamilyInPolicy     uint32 = 312
	CodeTooManyOperators   uint32 = 313
	CodeAlreadyOperator    uint32 = 314
	CodeAlreadyExists      uint32 = 315
	CodeBagHasObjects      uint32 = 316
	CodeNoInvites          uint32 = 317

	// Rates: 400–499.
	CodeMembersPerBlock uint32 = 400
	CodeTooManyPending  uint32 = 401
)

func isNotFoundCode(c uint32) bool { return c >= 100 && c < 200 }

// Sentinels, one per code. Compare with errors.Is; the chain returns
// detailed errors that carry the same code.
var (
	ErrInternal     = &Error{CodeInternal, "internal error in the data directory"}
	ErrBadTx        = &Error{CodeBadTx, "transaction could not be decoded"}
	ErrBadSignature = &Error{CodeBadSignature, "transaction signature does not verify"}
	ErrBadNonce     = &Error{CodeBadNonce, "transaction nonce was already used or is too old"}
	ErrWrongChain   = &Error{CodeWrongChain, "transaction was signed for another chain"}
	ErrUnauthorized = &Error{CodeUnauthorized, "the signing account is not allowed to do this"}
	ErrInvalid      = &Error{CodeInvalid, "invalid argument"}
	ErrUnknownMsg   = &Error{CodeUnknownMsg, "unknown transaction type"}
	ErrUnknownQuery = &Error{CodeUnknownQuery, "unknown query path"}

	ErrNotFound                   = &Error{CodeNotFound, "not found"}
	ErrBagNotFound                = &Error{CodeBagNotFound, "bag not found"}
	ErrStorageBucketNotFound      = &Error{CodeStorageBucketNotFound, "storage bucket not found"}
	ErrFamilyNotFound             = &Error{CodeFamilyNotFound, "distribution bucket family not found"}
	ErrDistributionBucketNotFound = &Error{CodeDistributionBucketNotFound, "distribution bucket not found"}
	ErrObjectNotFound             = &Error{CodeObjectNotFound, "data object not found"}
	ErrMemberNotFound             = &Error{CodeMemberNotFound, "member not found"}
	ErrChannelNotFound            = &Error{CodeChannelNotFound, "channel not found"}
	ErrWorkerNotFound             = &Error{CodeWorkerNotFound, "worker not found"}

	ErrBucketFull          = &Error{CodeBucketFull, "storage bucket is full"}
	ErrVoucherLimitTooHigh = &Error{CodeVoucherLimitTooHigh, "voucher limit is above the global voucher max limit"}
	ErrObjectTooLarge      = &Error{CodeObjectTooLarge, "data object is larger than the max data object size"}
	ErrBlacklisted         = &Error{CodeBlacklisted, "content ID is blacklisted"}
	ErrUploadingBlocked    = &Error{CodeUploadingBlocked, "uploading is blocked"}
	ErrZeroSize            = &Error{CodeZeroSize, "data object size is zero"}
	ErrNoStorageBuckets    = &Error{CodeNoStorageBuckets, "bag has no storage buckets"}
	ErrBlacklistFull       = &Error{CodeBlacklistFull, "blacklist is full"}
	ErrBadContentID        = &Error{CodeBadContentID, "content ID is not a CID"}

	ErrBucketHasBags      = &Error{CodeBucketHasBags, "bucket still has bags"}
	ErrBucketHasOperator  = &Error{CodeBucketHasOperator, "bucket has an operator"}
	ErrFamilyHasBuckets   = &Error{CodeFamilyHasBuckets, "distribution bucket family still has buckets"}
	ErrInvitationPending  = &Error{CodeInvitationPending, "an operator invitation is pending"}
	ErrNoInvitation       = &Error{CodeNoInvitation, "no such operator invitation"}
	ErrWorkerBusy         = &Error{CodeWorkerBusy, "worker already operates or is invited to a bucket"}
	ErrTooFewBuckets      = &Error{CodeTooFewBuckets, "too few buckets qualify for the dynamic bag policy"}
	ErrBucketsPerBagLimit = &Error{CodeBucketsPerBagLimit, "buckets-per-bag limit exceeded"}
	ErrNotAcceptingBags   = &Error{CodeNotAcceptingBags, "bucket is not accepting new bags"}
	ErrNotOperator        = &Error{CodeNotOperator, "not an operator of the bucket"}
	ErrBagAlreadyInBucket = &Error{CodeBagAlreadyInBucket, "bag is already in the bucket"}
	ErrBagNotInBucket     = &Error{CodeBagNotInBucket, "bag is not in the bucket"}
	ErrFamilyInPolicy     = &Error{CodeFamilyInPolicy, "distribution bucket family is used by a dynamic bag policy"}
	ErrTooManyOperators   = &Error{CodeTooManyOperators, "bucket has the maximum number of operators and invitations"}
	ErrAlreadyOperator    = &Error{CodeAlreadyOperator, "worker is already an operator of the bucket"}
	ErrAlreadyExists      = &Error{CodeAlreadyExists, "already exists"}
	ErrBagHasObjects      = &Error{CodeBagHasObjects, "bag still has data objects"}
	ErrNoInvites          = &Error{CodeNoInvites, "the inviting member has no invitations left"}

	ErrMembersPerBlock = &Error{CodeMembersPerBlock, "this block registered the most members a block may; try again in the next block"}
	// ErrTooManyPending refuses a transaction at mempool admission (never
	// in a block): its account has the most transactions the mempool
	// holds per account waiting already.
	ErrTooManyPending = &Error{CodeTooManyPending, "too many pending transactions from this account; wait for the next block"}
)

// ErrVoucherExceeded is another name for ErrBucketFull: a storage bucket's
// voucher has no room for what was asked.
var ErrVoucherExceeded = ErrBucketFull

var sentinels = map[uint32]*Error{}

func init() {
	for _, e := range []*Error{
		ErrInternal, ErrBadTx, ErrBadSignature, ErrBadNonce, ErrWrongChain, ErrUnauthorized,
		ErrInvalid, ErrUnknownMsg, ErrUnknownQuery, ErrNotFound, ErrBagNotFound,
		ErrStorageBucketNotFound, ErrFamilyNotFound, ErrDistributionBucketNotFound,
		ErrObjectNotFound, ErrMemberNotFound, ErrChannelNotFound, ErrWorkerNotFound,
		ErrBucketFull, ErrVoucherLimitTooHigh, ErrObjectTooLarge, ErrBlacklisted,
		ErrUploadingBlocked, ErrZeroSize, ErrNoStorageBuckets, ErrBlacklistFull, ErrBadContentID,
		ErrBucketHasBags, ErrBucketHasOperator, ErrFamilyHasBuckets, ErrInvitationPending,
		ErrNoInvitation, ErrWorkerBusy, ErrTooFewBuckets, ErrBucketsPerBagLimit,
		ErrNotAcceptingBags, ErrNotOperator, ErrBagAlreadyInBucket, ErrBagNotInBucket,
		ErrFamilyInPolicy, ErrTooManyOperators, ErrAlreadyOperator, ErrAlreadyExists,
		ErrBagHasObjects, ErrNoInvites, ErrMembersPerBlock, ErrTooManyPending,
	} {
		if _, dup := sentinels[e.Code]; dup {
			panic(fmt.Sprintf("chain: duplicate error code %d", e.Code))
		}
		sentinels[e.Code] = e
	}
}

// Errorf returns an error with the code of sentinel and a detailed message.
// The result matches sentinel under errors.Is.
func Errorf(sentinel *Error, format string, args ...any) *Error {
	return &Error{Code: sentinel.Code, Msg: fmt.Sprintf(format, args...)}
}

// ErrorFromCode turns a result code and log back into an error: nil for
// CodeOK, otherwise a *Error with that code whose message is log (or the
// sentinel's message when log is empty). Unknown codes keep their number.
func ErrorFromCode(code uint32, log string) error {
	if code == CodeOK {
		return nil
	}
	if log == "" {
		if s, ok := sentinels[code]; ok {
			log = s.Msg
		} else {
			log = fmt.Sprintf("data directory error code %d", code)
		}
	}
	return &Error{Code: code, Msg: log}
}

// CodeOf returns the stable code of err: the Code of a *Error in its chain,
// CodeOK for nil, CodeInternal otherwise. The consensus application uses it
// to turn Machine errors into ABCI result codes.
func CodeOf(err error) uint32 {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Plural formats a count with its noun: "1 bag", "2 bags".
func Plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
