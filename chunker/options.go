package chunker

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

const (
	// DefaultChunkSize is the chunk size used unless WithChunkSize says
	// otherwise: 1 MiB.
	DefaultChunkSize = 1 << 20

	// MaxChunkSize is the largest chunk size accepted. It is the limit of
	// `ipfs add` (a 2 MiB block minus 256 bytes of framing budget), so every
	// chunk fits in one bitswap block and the file ID stays reproducible
	// with IPFS tools.
	MaxChunkSize = 2<<20 - 256

	// MaxLinks is the number of links per interior DAG node, the IPFS
	// default for the balanced layout. It is part of the file ID's
	// definition, so it is not configurable.
	MaxLinks = 174
)

// Option configures a Chunker, Writer, Sum or Builder.
type Option func(*config)

type config struct {
	chunkSize   int
	workers     int
	chunkFunc   func(Chunk) error
	noChunkList bool // zero value keeps the list, so a zero Builder does
	noNodes     bool
	nodeFunc    func(Block) error
}

func newConfig(opts []Option) (config, error) {
	c := config{chunkSize: DefaultChunkSize, workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(&c)
	}
	if c.chunkSize < 1 || c.chunkSize > MaxChunkSize {
		return c, fmt.Errorf("%w: chunk size %d is outside 1..%d bytes", ErrInvalidOption, c.chunkSize, MaxChunkSize)
	}
	if c.workers < 1 {
		return c, fmt.Errorf("%w: %d hashing workers; use at least 1", ErrInvalidOption, c.workers)
	}
	return c, nil
}

// window is the number of chunk buffers in use: enough to keep every
// worker busy while the next buffer is filled, and no more, so memory is
// window × chunk size whatever the stream's length.
func (c config) window() int { return 2 * c.workers }

// WithChunkSize sets the chunk size in bytes (default DefaultChunkSize).
// Every chunk but the last has exactly this size. The same bytes chunked
// with a different size have a different file ID.
func WithChunkSize(n int) Option { return func(c *config) { c.chunkSize = n } }

// WithWorkers sets how many goroutines hash chunks in parallel (default
// runtime.GOMAXPROCS(0)).
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithChunkFunc makes Sum and Writer call fn with every chunk, in order, as
// soon as it is hashed, for example to push it to a peer without buffering
// the file. Chunk.Data is only valid during the call; copy it to keep it.
// An error from fn stops chunking and is returned. A Chunker ignores it.
func WithChunkFunc(fn func(Chunk) error) Option { return func(c *config) { c.chunkFunc = fn } }

// WithChunkList sets whether Sum, Writer and Builder keep one ChunkInfo per
// chunk in Result.Chunks (default true). A caller that only needs the root,
// or sees the chunks through WithChunkFunc, passes false so memory does not
// grow with the file: the list costs about 100 bytes per chunk. Without it
// Result.NumChunks still counts the chunks, and Result.Proof still works if
// the nodes are kept.
func WithChunkList(keep bool) Option { return func(c *config) { c.noChunkList = !keep } }

// WithNodes sets whether Sum, Writer and Builder keep the DAG's interior
// blocks in Result.Nodes (default true), about one 8 KiB block per MaxLinks
// chunks. Without them Result.Proof fails; WithNodeFunc still sees every
// block.
func WithNodes(keep bool) Option { return func(c *config) { c.noNodes = !keep } }

// WithNodeFunc makes Sum, Writer and Builder call fn with every interior
// block of the DAG as soon as its last child is known: children before
// their parent, the root last, so the blocks can be stored or sent while
// the file streams. Combine it with WithNodes(false) to keep none of them.
// fn may keep the Block. An error from fn stops chunking and is returned.
// A one-chunk file has no interior block, and fn is not called.
func WithNodeFunc(fn func(Block) error) Option { return func(c *config) { c.nodeFunc = fn } }

// ParseChunkSize parses a chunk size written as a byte count ("262144"),
// with a binary or decimal unit ("256KiB", "1MiB", "512KB", "1MB") or in the
// IPFS chunker form ("size-262144"), and checks it is between 1 and
// MaxChunkSize bytes.
func ParseChunkSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(t, "size-")
	units := []struct {
		suffix string
		mult   int
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"kb", 1000}, {"mb", 1000 * 1000}, {"b", 1},
	}
	mult := 1
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: chunk size %q: want a byte count like 262144, 256KiB or 1MiB", ErrInvalidOption, s)
	}
	if n < 1 || n > MaxChunkSize/mult {
		return 0, fmt.Errorf("%w: chunk size %q is outside 1..%d bytes (2 MiB - 256, the IPFS limit)", ErrInvalidOption, s, MaxChunkSize)
	}
	return n * mult, nil
}
