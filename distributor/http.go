package distributor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
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

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, If-None-Match, If-Range, Accept")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// Messages of the error answers whose cause is the node's business (a
// chain read's error names the operator's endpoint): the cause is
// logged, the client learns what to do.
var (
	errMsgChainUnavailable = errors.New("the node cannot read the chain right now; try again shortly")
	errMsgUnavailable      = errors.New("no storage provider of the object's bag could serve it right now; try again shortly")
	errMsgProvidersBusy    = errors.New("the storage providers holding the object are busy serving others; try again shortly")
	errMsgBadData          = errors.New("the storage providers' blocks do not form the object the chain describes")
)

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
		// The chain's health logs the failures, a line a minute at most.
		s.log.Debug("object record unavailable", "object", id, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "chain_unavailable", errMsgChainUnavailable)
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
	switch {
	case errors.Is(err, ErrBadDAG):
		s.log.Warn("serve object", "object", obj.ID, "err", err)
		writeError(w, http.StatusBadGateway, "bad_data", errMsgBadData)
		return
	case errors.Is(err, ErrChainUnavailable):
		s.log.Debug("serve object: chain unavailable", "object", obj.ID, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "chain_unavailable", errMsgChainUnavailable)
		return
	}
	s.log.Warn("serve object", "object", obj.ID, "err", err)
	w.Header().Set("Retry-After", "5")
	if errors.Is(err, ErrProvidersBusy) {
		writeError(w, http.StatusServiceUnavailable, "providers_busy", errMsgProvidersBusy)
		return
	}
	writeError(w, http.StatusServiceUnavailable, "unavailable", errMsgUnavailable)
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
		} else if !s.checkRange(w, r, rec, &start, &end) {
			return
		}
	}
	keep := s.keeps(obj)
	complete, cached, ctype := s.cache.request(obj.ID, obj.Size, time.Now())
	// A miss takes its slot at once; a hit before the first block it must
	// fetch (its object evicted mid-answer).
	// A HEAD whose type is known reads nothing: it takes no slot.
	slot := s.newMissSlot(r)
	defer slot.release()
	head := r.Method == http.MethodHead
	if head && ctype == "" && !complete {
		// Sniffed before the cache had a record of the object (its
		// first block's write to the cache follows the sniff): the
		// type is remembered beside the cache.
		ctype = s.knownContentType(obj.ID)
	}
	if !s.cacheHeaders(h, obj, complete, cached) && !(head && ctype != "") && slot.take() != nil {
		return
	}
	// The reader waits (for a slot, a fetch) under the slot's context,
	// which ends with the answer: a part read of ServeContent's that
	// outlives a failed write returns rather than holding the reader.
	rd, err := newObjectReader(slot.ctx, s.fetch, rec, keep, slot)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	defer rd.Close()
	defer slot.stop() // before Close, on every path (see below)
	rd.end = end
	if err := s.limitRanges(r, rec, rd); err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	switch {
	case r.Header.Get("Range") == "":
		start, rd.end = 0, int64(obj.Size) // none, or limitRanges dropped it
	case len(rd.spans) > 0:
		start = rd.spans[0].start // the range ServeContent sends first
	}
	if head {
		// No bytes sent: none read ahead, none fetched but the first
		// chunk, when the type is not known yet — a HEAD names the type
		// the GET will.
		rd.end = 0
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
	dw := s.newWriter(w, slot, rd.stall, !complete)
	defer dw.close()
	http.ServeContent(dw, r, "", time.Time{}, rd)
	s.tooSlow(r, obj, dw)
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

// tooSlow logs and counts an answer cut off for its client reading
// slower than the minimum send rate.
func (s *Server) tooSlow(r *http.Request, obj chain.DataObject, dw *deadlineWriter) {
	if !dw.pace.cut {
		return
	}
	s.m.slowCuts.Inc()
	s.log.Info("client reads too slowly; cut off", "object", obj.ID, "client", r.RemoteAddr, "sent", dw.n,
		"min_rate", dw.pace.min, "window", dw.pace.window)
}

// checkRange reads r's Range header (bytes=…) into start and end, and
// answers 416 itself, before anything is fetched, to one with too many
// ranges or one http.ServeContent would answer 416 (malformed, or past the
// end), reporting whether the answer goes on.
func (s *Server) checkRange(w http.ResponseWriter, r *http.Request, rec *record, start, end *int64) bool {
	rg, size := r.Header.Get("Range"), int64(rec.obj.Size)
	var kind rangeKind
	*start, *end, kind = rangeBounds(rg, size)
	switch {
	case kind == rangeOK:
		return true
	case kind != rangeTooMany && !rangeApplies(r, rec.etag):
		*start, *end = 0, size // the range is ignored: the whole object
		return true
	case kind != rangeInvalid:
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
	}
	writeError(w, http.StatusRequestedRangeNotSatisfiable, "bad_range", fmt.Errorf("range %.128q: want at most %d ranges of bytes=first-last starting within %d bytes", rg, MaxRanges, size))
	return false
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

// rangeKind is what rangeBounds makes of a Range header.
type rangeKind int

const (
	rangeOK        rangeKind = iota
	rangeTooMany             // over MaxRanges: refused
	rangeNoOverlap           // every range starts past the end: 416, Content-Range bytes */size
	rangeInvalid             // malformed: 416
)

// rangeBounds reads a Range header as http.ServeContent does (parseRange),
// with at most MaxRanges ranges. For one ServeContent serves it returns
// the first byte the ranges start at and the byte after the last they end
// at, which bound the read-ahead; for one it answers 416 it says why, so
// that the answer is given before anything is fetched.
func rangeBounds(hdr string, size int64) (start, end int64, kind rangeKind) {
	if hdr == "" || !strings.HasPrefix(hdr, "bytes=") {
		return 0, size, rangeOK
	}
	specs := strings.Split(hdr[len("bytes="):], ",")
	if len(specs) > MaxRanges {
		return 0, 0, rangeTooMany
	}
	start, end = size, 0
	noOverlap, some := false, false
	for _, sp := range specs {
		sp = textproto.TrimString(sp)
		if sp == "" {
			continue
		}
		s0, e0, k := rangeSpec(sp, size)
		switch k {
		case rangeInvalid:
			return 0, size, rangeInvalid
		case rangeNoOverlap:
			noOverlap = true
			continue
		}
		some = true
		start, end = min(start, s0), max(end, e0)
	}
	switch {
	case !some && noOverlap:
		return 0, 0, rangeNoOverlap
	case !some:
		return 0, size, rangeOK // "bytes=": ServeContent sends it all
	}
	if start >= size {
		start = 0
	}
	return start, max(end, start), rangeOK
}

// rangeSpec reads one range ("first-last", "first-" or "-suffix") of an
// object of size bytes, as net/http does.
func rangeSpec(sp string, size int64) (start, end int64, kind rangeKind) {
	a, b, found := strings.Cut(sp, "-")
	if !found {
		return 0, 0, rangeInvalid
	}
	a, b = textproto.TrimString(a), textproto.TrimString(b)
	if a == "" {
		if b == "" || b[0] == '-' {
			return 0, 0, rangeInvalid
		}
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, rangeInvalid
		}
		return size - min(n, size), size, rangeOK
	}
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil || n < 0 {
		return 0, 0, rangeInvalid
	}
	if n >= size {
		return 0, 0, rangeNoOverlap
	}
	if b == "" {
		return n, size, rangeOK
	}
	m, err := strconv.ParseInt(b, 10, 64)
	if err != nil || n > m {
		return 0, 0, rangeInvalid
	}
	return n, min(m+1, size), rangeOK
}

// rangeApplies reports whether http.ServeContent would apply r's Range
// header to an answer whose ETag is etag: no If-Match (checked first) and
// no If-Range, or one naming etag (strong comparison). Otherwise it sends
// the whole object.
func rangeApplies(r *http.Request, etag string) bool {
	return r.Header.Get("If-Match") == "" && ifRangeHolds(r, etag)
}

// ifRangeHolds reports whether r has no If-Range or one naming etag
// (strong comparison): http.ServeContent answers such a request's Range
// once its other preconditions hold.
func ifRangeHolds(r *http.Request, etag string) bool {
	ir := r.Header.Get("If-Range")
	return ir == "" || (ir == etag && !strings.HasPrefix(ir, "W/"))
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
