package distributor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/satchel-net/satchel/chain"
)

// Limits of the HTTP API.
const (
	// MaxRanges is the most byte ranges one request may ask for; more get
	// 416.
	MaxRanges = 64
	// sniffLen is how many leading bytes decide the content type.
	sniffLen = 512
	// maxContentTypes bounds the content types remembered for objects
	// that are not cached.
	maxContentTypes = 4096
	// pendingMaxAge is the max-age of a 404 for a pending object.
	pendingMaxAge = 5
)

// exposed are the response headers CORS lets pages read.
const exposed = "x-cache, x-data-source, Content-Range, Content-Length, Content-Type, ETag, Accept-Ranges"

// Header values shared by every answer that carries them: set as slices
// built once (canonical keys, no allocation per request), never changed
// in place (net/http and this package replace a header's slice, never
// write into it).
var (
	hvStar     = []string{"*"}
	hvExposed  = []string{exposed}
	hvBytes    = []string{"bytes"}
	hvAccept   = []string{"Accept"}
	hvSandbox  = []string{"sandbox"}
	hvNosniff  = []string{"nosniff"}
	hvHit      = []string{"hit"}
	hvPending  = []string{"pending"}
	hvMiss     = []string{"miss"}
	hvLocal    = []string{"local"}
	hvExternal = []string{"external"}
)

// Handler returns the node's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/assets/{id}", s.serveAsset)
	mux.HandleFunc("OPTIONS /api/v1/assets/{id}", s.preflight)
	mux.HandleFunc("GET /api/v1/assets/{id}/blocks/{cid}", s.serveBlock)
	mux.HandleFunc("GET /api/v1/status", s.serveStatus)
	mux.HandleFunc("GET /api/v1/buckets", s.serveBuckets)
	mux.HandleFunc("GET /{$}", s.servePage)
	if g, ok := s.cfg.reg.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	return s.instrument(mux)
}

// instrument counts requests by status code and sets the headers every
// answer carries.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.m.active.Inc()
		defer s.m.active.Dec()
		h := w.Header()
		h["Access-Control-Allow-Origin"] = hvStar
		h["Access-Control-Expose-Headers"] = hvExposed
		h["Timing-Allow-Origin"] = hvStar
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(cw, r)
		s.m.code(cw.code).Inc()
	})
}

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
// that stops reading is cut off, however long the whole answer takes.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
	n  int64
	// span is the reader of the span being copied, kept here so that a
	// span allocates none.
	span io.LimitedReader
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
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
		w.span = io.LimitedReader{R: f, N: min(n-total, sendSpan)}
		m, err := readFrom(w.ResponseWriter, &w.span)
		total += m
		w.n += m
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
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, If-None-Match, If-Range, Accept")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// apiError is the JSON body of an error answer.
type apiError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, kind string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(apiError{Type: kind, Message: err.Error()})
}

// object resolves the request's object ID, answering the error itself.
func (s *Server) object(w http.ResponseWriter, r *http.Request) (*record, bool) {
	raw := r.PathValue("id")
	id, err := chain.ParseObjectID(raw)
	if err != nil || strings.TrimSpace(raw) != raw {
		writeError(w, http.StatusBadRequest, "bad_object_id", fmt.Errorf("object ID %.64q: want a decimal integer below 2^64", raw))
		return nil, false
	}
	rec, err := s.index.lookup(r.Context(), id)
	switch {
	case err == nil:
		return rec, true
	case r.Context().Err() != nil:
		// The client left.
	case errors.Is(err, ErrPending):
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", pendingMaxAge))
		writeError(w, http.StatusNotFound, "pending", err)
	case errors.Is(err, ErrNotDistributed):
		writeError(w, http.StatusMisdirectedRequest, "not_distributed", err)
	case errors.Is(err, ErrChainUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "chain_unavailable", err)
	default:
		writeError(w, http.StatusNotFound, "not_found", err)
	}
	return nil, false
}

// keeps reports whether obj's leaves go to the cache.
func (s *Server) keeps(obj chain.DataObject) bool {
	return int64(obj.Size) <= s.cfg.maxCachedObject && int64(obj.Size) <= s.cfg.cacheSize
}

// fetchFailed answers a failure to get an object's blocks before the
// answer started.
func (s *Server) fetchFailed(w http.ResponseWriter, r *http.Request, obj chain.DataObject, err error) {
	if r.Context().Err() != nil {
		return // the client left
	}
	s.log.Warn("serve object", "object", obj.ID, "err", err)
	if errors.Is(err, ErrBadDAG) {
		writeError(w, http.StatusBadGateway, "bad_data", err)
		return
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "unavailable", err)
}

// serveAsset answers GET and HEAD /api/v1/assets/{id}. A hit takes one
// look at the index, one at the cache, and sends the block files (kept
// open by the cache) with sendfile.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.object(w, r)
	if !ok {
		return
	}
	obj := rec.obj
	h := w.Header()
	s.objectHeaders(h, rec)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, rec.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if wantsCAR(r) {
		s.serveCAR(w, r, rec)
		return
	}
	start, end := int64(0), int64(obj.Size)
	if rg := r.Header.Get("Range"); rg != "" {
		if !strings.HasPrefix(rg, "bytes=") {
			// RFC 9110 §14.2: a range unit the server does not know is
			// ignored (net/http would answer 416).
			r.Header.Del("Range")
		} else if start, end, ok = rangeBounds(rg, int64(obj.Size)); !ok {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", obj.Size))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "bad_range", fmt.Errorf("range %.128q: want at most %d ranges of bytes=first-last within %d bytes", rg, MaxRanges, obj.Size))
			return
		}
	}
	keep := s.keeps(obj)
	complete, cached, ctype := s.cache.request(obj.ID, obj.Size, time.Now())
	// A miss takes its slot at once; a hit before the first block it must
	// fetch (its object evicted mid-answer).
	slot := s.newMissSlot(r.Context())
	defer slot.release()
	if !s.cacheHeaders(h, obj, complete, cached) && slot.take() != nil {
		return
	}
	rd, err := newObjectReader(r.Context(), s.fetch, rec, keep, slot)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	defer rd.Close()
	defer slot.stop() // before Close, on every path (see below)
	rd.end = end
	if r.Method == http.MethodHead {
		rd.end = 0 // no bytes sent: none read ahead, none fetched but the type's
	}
	if ctype == "" {
		if ctype, err = s.sniffAndSeek(r, rec, rd, keep, start); err != nil {
			s.fetchFailed(w, r, obj, err)
			return
		}
	} else if start > 0 {
		if err := rd.prefetch(start); err != nil {
			s.fetchFailed(w, r, obj, err)
			return
		}
	}
	h["Content-Type"] = []string{ctype}
	dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: s.cfg.writeTimeout}
	http.ServeContent(dw, r, "", time.Time{}, rd)
	// The answer ended; a read of ServeContent's multi-range goroutine,
	// which can outlive it, may be waiting for a slot while it holds the
	// reader: it returns now, before anything here takes the reader's lock
	// (networkBytes, Close).
	slot.stop()
	ext := min(rd.networkBytes(), dw.n)
	if ext > 0 {
		s.m.servedExt.Add(float64(ext))
	}
	s.m.servedLocal.Add(float64(dw.n - ext))
}

// objectHeaders sets the headers of every answer about an object.
func (s *Server) objectHeaders(h http.Header, rec *record) {
	h["Etag"] = rec.etagHdr
	h["Cache-Control"] = s.cacheControl
	h["Accept-Ranges"] = hvBytes
	h["Vary"] = hvAccept
	// Objects are whatever members uploaded: a document sniffed as HTML
	// runs no script on this origin.
	h["Content-Security-Policy"] = hvSandbox
	h["X-Content-Type-Options"] = hvNosniff
}

// cacheHeaders sets x-cache and x-data-source, counts the hit or miss,
// and reports a hit: every content byte of obj in the cache (complete);
// cached says some are.
func (s *Server) cacheHeaders(h http.Header, obj chain.DataObject, complete, cached bool) bool {
	switch {
	case complete:
		h["X-Cache"] = hvHit
		h["X-Data-Source"] = hvLocal
		s.m.hits.Inc()
		return true
	case cached || s.fetch.fetching(obj.ID):
		h["X-Cache"] = hvPending
	default:
		h["X-Cache"] = hvMiss
	}
	h["X-Data-Source"] = hvExternal
	s.m.misses.Inc()
	return false
}

// sniffAndSeek returns obj's content type and, for a read starting at
// start > 0, starts fetching the leaf there. Every answer names the type
// (browsers and CDN edges need it, RFC 9110 §8.3): a read from the start
// sniffs it from the leaf it reads first; a seek into an object whose type
// is not known yet fetches the first leaf too, at once with the leaf under
// the seek and under the answer's miss slot, and sniffs it there. The type
// is remembered (with the cache's state, across restarts), so an object is
// sniffed once: later seeks fetch only the leaves they read.
func (s *Server) sniffAndSeek(r *http.Request, rec *record, rd *objectReader, keep bool, start int64) (string, error) {
	obj := rec.obj
	if start <= 0 {
		return s.contentType(obj, rd)
	}
	if ctype := s.knownContentType(obj.ID); ctype != "" {
		return ctype, rd.prefetch(start)
	}
	srd, err := newObjectReader(r.Context(), s.fetch, rec, keep, rd.slot)
	if err != nil {
		return "", err
	}
	srd.end = 0 // it reads the first bytes only
	var ctype string
	var cerr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer srd.Close()
		ctype, cerr = s.contentType(obj, srd)
	})
	perr := rd.prefetch(start)
	wg.Wait()
	return ctype, errors.Join(perr, cerr)
}

// knownContentType returns the content type sniffed before, if any.
func (s *Server) knownContentType(id chain.ObjectID) string {
	if t := s.cache.contentType(id); t != "" {
		return t
	}
	s.ctypesMu.Lock()
	defer s.ctypesMu.Unlock()
	return s.ctypes[id]
}

// contentType returns obj's content type, sniffed from its first bytes
// (WHATWG MIME sniffing, net/http.DetectContentType) and remembered.
func (s *Server) contentType(obj chain.DataObject, rd *objectReader) (string, error) {
	if t := s.knownContentType(obj.ID); t != "" {
		s.cache.setContentType(obj.ID, t) // sniffed before its blocks were cached
		return t, nil
	}
	// No read-ahead while sniffing: a seek far into the object must not
	// fetch the leaves after the first one.
	end := rd.end
	rd.end = 0
	buf := make([]byte, min(sniffLen, int64(obj.Size)))
	_, err := io.ReadFull(rd, buf)
	rd.end = end
	if err != nil {
		return "", err
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	rd.readAhead() // the answer goes on from the first leaf
	t := http.DetectContentType(buf)
	s.cache.setContentType(obj.ID, t)
	s.ctypesMu.Lock()
	if len(s.ctypes) >= maxContentTypes {
		clear(s.ctypes)
	}
	s.ctypes[obj.ID] = t
	s.ctypesMu.Unlock()
	return t, nil
}

// etagMatch reports whether an If-None-Match list names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// rangeBounds checks a Range header: at most MaxRanges ranges. It returns
// the first byte the ranges start at and the byte after the last they end
// at, which bound the read-ahead; ok is false for a header to refuse. A
// header that is not a byte range is left to http.ServeContent, which
// answers 416 for one it cannot parse.
func rangeBounds(hdr string, size int64) (start, end int64, ok bool) {
	if hdr == "" || !strings.HasPrefix(hdr, "bytes=") {
		return 0, size, true
	}
	specs := strings.Split(hdr[len("bytes="):], ",")
	if len(specs) > MaxRanges {
		return 0, 0, false
	}
	start, end = size, 0
	for _, sp := range specs {
		a, b, found := strings.Cut(strings.TrimSpace(sp), "-")
		if !found {
			return 0, size, true // malformed: ServeContent answers
		}
		var s0, e0 int64
		switch {
		case a == "":
			n, err := strconv.ParseInt(b, 10, 64)
			if err != nil {
				return 0, size, true
			}
			s0, e0 = max(size-n, 0), size
		default:
			n, err := strconv.ParseInt(a, 10, 64)
			if err != nil {
				return 0, size, true
			}
			s0, e0 = n, size
			if b != "" {
				m, err := strconv.ParseInt(b, 10, 64)
				if err != nil {
					return 0, size, true
				}
				e0 = min(m+1, size)
			}
		}
		start, end = min(start, s0), max(end, e0)
	}
	if start >= size {
		start = 0
	}
	return start, max(end, start), true
}

// serveStatus answers GET /api/v1/status.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.Status())
}

// serveBuckets answers GET /api/v1/buckets.
func (s *Server) serveBuckets(w http.ResponseWriter, r *http.Request) {
	ids := []string{}
	for _, b := range s.index.servedBuckets() {
		ids = append(ids, b.String())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string][]string{"bucketIds": ids})
}
