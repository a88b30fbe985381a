package chunker

import "errors"

var (
	// ErrCIDMismatch means bytes do not hash to the CID they were expected
	// to have: the data (or a DAG block) was corrupted or substituted.
	ErrCIDMismatch = errors.New("chunker: content does not match its CID")

	// ErrBadProof means a merkle proof does not show that a chunk sits at
	// the claimed index under the root.
	ErrBadProof = errors.New("chunker: invalid chunk proof")

	// ErrIndexOutOfRange means a chunk index is negative or past the last
	// chunk of the file.
	ErrIndexOutOfRange = errors.New("chunker: chunk index out of range")

	// ErrInvalidOption means an option has a value the chunker cannot use,
	// such as a chunk size of zero.
	ErrInvalidOption = errors.New("chunker: invalid option")

	// ErrClosed means the Chunker or Writer was used after Close or Finish.
	ErrClosed = errors.New("chunker: use after close")
)
