package audit

import (
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
)

// Limits of the audit protocol (docs/PROTOCOL.md, "Audits"). Both sides
// enforce them; a frame over its limit resets the stream.
const (
	// MaxSamples is the most chunks one challenge asks for, so an answer is
	// at most MaxSamples frames of MaxFrame bytes.
	MaxSamples = 8
	// MaxChallengeFrame bounds the challenger's one frame.
	MaxChallengeFrame = 4 << 10
	// MaxFrame bounds each answer frame: a whole chunk (at most
	// chunker.MaxChunkSize) and its proof path.
	MaxFrame = p2p.DefaultMaxFrame
	// MaxPathBlocks is the deepest proof path accepted (chunker's bound on
	// any file's DAG height).
	MaxPathBlocks = 9
	// MaxChunkSize is the largest chunk an answer may carry.
	MaxChunkSize = chunker.MaxChunkSize
	// MaxObjectBytes is the largest object size ChunkCount believes a
	// DAG's root (1 PiB): a root claiming more is a lie (ErrBadAnswer), so
	// the chunk count it returns always fits an int.
	MaxObjectBytes = 1 << 50
	// MinNonce and MaxNonce bound a challenge's nonce length in bytes.
	MinNonce = 16
	MaxNonce = 64
	// ClockWindow is how far a challenge's time may be from the provider's
	// clock, either way. A nonce is remembered for twice as long, so a
	// replay is refused whenever it would still be in the window.
	ClockWindow = 2 * time.Minute
	// AnswerTimeout bounds a whole audit on the challenger's side: an
	// answer not complete by then is a failed audit ("too late"). The
	// provider gives up writing after the same time.
	AnswerTimeout = 30 * time.Second
	// DefaultRate and DefaultBurst are the per-challenger limit a handler
	// applies by default: a challenge every 2 seconds on average, up to 10
	// at once.
	DefaultRate  = 0.5
	DefaultBurst = 10
	// DefaultAnswerRate and DefaultAnswerBurst are the node-wide budget a
	// handler answers within by default: the bytes of chunks and proof
	// blocks it reads (and hashes) for all challengers together, 8 MiB a
	// second on average, up to four answers of MaxSamples whole chunks at
	// once. A challenge that finds the budget spent is refused.
	DefaultAnswerRate  = 8 << 20
	DefaultAnswerBurst = 4 * MaxSamples * MaxChunkSize
	// ChallengerShare and ChallengerBurstShare divide the node-wide answer
	// budget into what one challenger may use: by default half its rate
	// (4 MiB a second) and 1/4 of its burst (16 MiB, one challenge of
	// MaxSamples whole chunks of MaxChunkSize), charged in bytes read, so
	// a single peer (challenges are not limited to operators) cannot take
	// the whole budget however it shapes its challenges. A challenge is
	// admitted while the challenger's budget is not spent, and its reads
	// are then charged to it, so one challenge may overdraw it; an honest
	// auditor asks all its peers together for its audit bandwidth (1 MB a
	// second by default; the node it audits reads up to about four times
	// that, whole chunks for sampled ranges, which the share must hold
	// when one auditor's peers are few), and a provider cleaning up a
	// moved bag proves each object with an audit of five chunks.
	// WithChallengerBudget sets other values.
	ChallengerShare      = 2
	ChallengerBurstShare = 4
	// MaxChallengerAnswers is how many challenges of one challenger are
	// answered at once, which bounds what it can overdraw its budget by
	// (an auditor challenges a peer one object at a time).
	MaxChallengerAnswers = 2
	// MaxConcurrent is how many challenges a handler answers at once over
	// all challengers; more are refused, so fresh peer IDs gain nothing.
	MaxConcurrent = 16
	// ChallengeCost is the least a challenge costs its challenger's byte
	// share (the strangers' shared one included), whatever it reads: a
	// challenge answered NOT_FOUND reads nothing but is answered and
	// remembered. The bytes an answer reads are charged beyond it. At the
	// default share strangers are answered at most 64 challenges a second
	// (256 at once), which maxStrangerNonces holds for the replay window.
	ChallengeCost = 64 << 10
	// maxKnownNonces and maxStrangerNonces bound the nonces a handler
	// remembers of known challengers (WithKnownChallengers; everyone
	// without it) and of strangers; a table full of live nonces forgets
	// its oldest first.
	maxKnownNonces    = 1 << 16
	maxStrangerNonces = 1 << 14
	// maxAnswerMemory bounds the block bytes all answers hold at once: an
	// answer is sent from the blocks it read, so each chunk read reserves
	// MaxChunkSize until it is sent (a range sample gives back all but its
	// range), and each proof-path block its size until the answer is done.
	// A challenge that finds it taken is refused.
	maxAnswerMemory = 64 << 20
	// maxChallengers bounds the per-challenger rate limiters kept; the
	// least recently seen challenger's is dropped first.
	maxChallengers = 4096
)
