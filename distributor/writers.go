package distributor

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// codeWriter records the status code.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom passes the copy to the connection (sendfile for files).
func (w *codeWriter) ReadFrom(r io.Reader) (int64, error) {
	return readFrom(w.ResponseWriter, r)
}

// readFrom copies r to w: with w's ReadFrom when it has one (net/http's
// HTTP/1 connection sends a file with sendfile and copies the rest through
// a pooled buffer), else with copyPooled (an HTTP/2 writer, a test's
// recorder).
func readFrom(w io.Writer, r io.Reader) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return copyPooled(w, r)
}

// copyPooled copies r to w through a pooled buffer, never through w's
// ReadFrom: it allocates nothing.
func copyPooled(w io.Writer, r io.Reader) (int64, error) {
	cb := copyBufs.Get().(*copyBuf)
	defer func() {
		cb.w.Writer = nil
		copyBufs.Put(cb)
	}()
	cb.w.Writer = w
	return io.CopyBuffer(&cb.w, r, cb.b)
}

// deadlineWriter gives every write to the client writeTimeout: a client
// that stops reading is cut off, however long the whole answer takes. For
// an answer that needs the network it also parks the answer's miss slot
// once it has spent stallAfter blocked writing since its last fetch
// (onStall), and cuts off a client that reads slower than the minimum
// send rate (pace).
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
	n  int64
	// span is the reader of the span being copied, kept here so that a
	// span allocates none.
	span io.LimitedReader

	// slot and onStall: while slot is held, stallAfter spent in writes
	// since the answer's last fetch calls onStall (from a timer's
	// goroutine). blocked is that time, seen the fetch count it is since.
	slot    *missSlot
	onStall func()
	stall   *time.Timer
	armed   bool
	blocked time.Duration
	seen    int64
	began   time.Time
	pace    pace
}

// stallAfter is how long an answer may spend blocked writing to its
// client between two fetches (a chunk apart: 1 MiB by default, at most
// 2) before it gives back its miss slot: a client that takes a chunk
// within a second never makes it; a slower one cannot hold a slot by
// reading just fast enough that no single write blocks long.
const stallAfter = time.Second

// newWriter returns the writer of an answer to w. While slot (nil: none)
// is held, stallAfter spent blocked in writes since the answer's last
// fetch calls onStall (nil: slot.parkKeeping). A paced answer, one that
// needs blocks from the network, is held to the minimum send rate.
func (s *Server) newWriter(w http.ResponseWriter, slot *missSlot, onStall func(), paced bool) *deadlineWriter {
	dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: s.cfg.writeTimeout, slot: slot, onStall: onStall}
	if slot != nil && onStall == nil {
		dw.onStall = func() { slot.parkKeeping() }
	}
	if paced && s.cfg.minSendRate > 0 {
		dw.pace = pace{min: s.cfg.minSendRate, window: s.cfg.sendRateWindow}
	}
	return dw
}

// begin sets the deadline of a write starting now and, while the answer
// holds its miss slot, arms the stall timer for what is left of
// stallAfter since the answer's last fetch.
func (w *deadlineWriter) begin() {
	now := time.Now()
	w.began = now
	_ = w.rc.SetWriteDeadline(w.pace.deadline(now, w.d))
	if !w.slot.holds() {
		return
	}
	if f := w.slot.fetches.Load(); f != w.seen {
		w.seen, w.blocked = f, 0
	}
	left := max(stallAfter-w.blocked, 0)
	if w.stall == nil {
		w.stall = time.AfterFunc(left, w.onStall)
	} else {
		w.stall.Reset(left)
	}
	w.armed = true
}

// end accounts a write of n bytes that began at begin and returned err;
// it returns errTooSlow when the client fell below the minimum send rate.
func (w *deadlineWriter) end(n int64, err error) error {
	now := time.Now()
	if w.armed {
		w.stall.Stop()
		w.armed = false
		w.blocked += now.Sub(w.began)
	}
	w.n += n
	if w.pace.add(now, w.began, n) {
		// Cut now: the answer's last flush fails at once.
		_ = w.rc.SetWriteDeadline(time.Unix(1, 0))
		return errTooSlow
	}
	return err
}

// close stops the stall timer at the end of the answer.
func (w *deadlineWriter) close() {
	if w.stall != nil {
		w.stall.Stop()
	}
}

// errTooSlow cuts off a client that reads slower than the minimum send
// rate.
var errTooSlow = errors.New("distributor: the client reads slower than the minimum send rate; cut off")

// pace holds an answer to the minimum send rate: min bytes a second,
// averaged over window of time spent writing to the client (time the
// answer spends fetching does not count). A window ends when its quota,
// min × window, is sent; a client that has not taken it after window of
// writing is cut off. The zero pace holds to nothing.
type pace struct {
	min    int64
	window time.Duration
	// spent is the time spent writing in this window, sent the bytes.
	spent time.Duration
	sent  int64
	cut   bool
}

// quota is the bytes a window must send.
func (p *pace) quota() int64 { return int64(float64(p.min) * p.window.Seconds()) }

// deadline returns the deadline of a write starting at now: d from now,
// or sooner, when the window's time runs out first with its quota not sent.
func (p *pace) deadline(now time.Time, d time.Duration) time.Time {
	if p.min <= 0 {
		return now.Add(d)
	}
	if p.sent >= p.quota() {
		p.spent, p.sent = 0, 0 // the window passed: a new one
	}
	return now.Add(max(min(d, p.window-p.spent), 0))
}

// add accounts n bytes written by a write that began at began and ended
// at now, and reports whether the client is to be cut off: its window
// spent, its quota not sent.
func (p *pace) add(now, began time.Time, n int64) bool {
	if p.min <= 0 {
		return false
	}
	p.spent += now.Sub(began)
	p.sent += n
	if p.spent >= p.window && p.sent < p.quota() {
		p.cut = true
	}
	return p.cut
}

// copyBufs are the buffers answers are copied through: larger than
// io.Copy's 32 KiB, so a cached chunk goes out in fewer system calls.
var copyBufs = sync.Pool{New: func() any { return &copyBuf{b: make([]byte, 128<<10)} }}

// copyBuf is a pooled copy buffer with the writer it copies to, kept
// beside it so that hiding the writer's ReadFrom allocates nothing.
type copyBuf struct {
	b []byte
	w writerOnly
}

// sendSpan is the most bytes sent from a block file under one write
// deadline.
const sendSpan = 128 << 10

// ReadFrom copies r to the client. An object's bytes that lie in cached
// block files go out with the kernel's file-to-socket copy (sendfile, as
// http.FileServer does, through sendFile), the others through a pooled
// buffer. A span allocates nothing.
func (w *deadlineWriter) ReadFrom(r io.Reader) (int64, error) {
	lr, ok := r.(*io.LimitedReader)
	var or *objectReader
	if ok {
		or, ok = lr.R.(*objectReader)
	}
	if !ok {
		return copyPooled(w, r)
	}
	var total int64
	for lr.N > 0 {
		f, n, err := or.fileSpan(min(lr.N, sendSpan))
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		var m int64
		if f != nil {
			m, err = w.sendFile(f, n)
			or.advance(m, err)
		} else {
			w.span = io.LimitedReader{R: or, N: n}
			m, err = copyPooled(w, &w.span)
		}
		total += m
		lr.N -= m
		if err != nil {
			return total, err
		}
		if m == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// sendFile sends n bytes of f from its offset with the connection's
// ReadFrom (the kernel's file-to-socket copy on an HTTP/1 connection; a
// pooled buffer else), each span of at most sendSpan under its own write
// deadline.
func (w *deadlineWriter) sendFile(f *os.File, n int64) (int64, error) {
	var total int64
	for total < n {
		w.begin()
		w.span = io.LimitedReader{R: f, N: min(n-total, sendSpan)}
		m, err := readFrom(w.ResponseWriter, &w.span)
		err = w.end(m, err)
		total += m
		if err != nil {
			return total, err
		}
		if m == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// writerOnly hides ReadFrom, so io.CopyBuffer uses the buffer it is given.
type writerOnly struct{ io.Writer }

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.begin()
	n, err := w.ResponseWriter.Write(p)
	return n, w.end(int64(n), err)
}
