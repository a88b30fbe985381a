package distributor

import (
	"net/http"
	"net/textproto"
	"strings"
)

// maxRangeLoads bounds the chunks a multi-range answer may read without
// sending them whole: one whose ranges would read more is answered as if it
// had no Range header. A chunk is fetched and verified whole to send any
// byte of it, so 64 one-byte ranges in 64 chunks would fetch 64 chunks
// (64 MiB at the default chunk size) to send a few kilobytes, and again on
// every request for an object too large to cache.
const maxRangeLoads = 8

// span is one range of a Range header: content bytes [start, end).
type span struct{ start, end int64 }

// rangeSpans returns the ranges of a Range header rangeBounds accepted, in
// the order http.ServeContent sends them (the request's), leaving out
// those that send nothing (empty, or starting past the end).
func rangeSpans(hdr string, size int64) []span {
	var spans []span
	for _, sp := range strings.Split(strings.TrimPrefix(hdr, "bytes="), ",") {
		if sp = textproto.TrimString(sp); sp == "" {
			continue
		}
		if s, e, k := rangeSpec(sp, size); k == rangeOK && s < e {
			spans = append(spans, span{s, e})
		}
	}
	return spans
}

// limitRanges applies maxRangeLoads to a request r with several ranges
// (the Range header checkRange accepted): when its ranges, sent in order,
// would read more than maxRangeLoads chunks not cached beyond those they
// send whole, it drops the Range header (RFC 9110 §14.2: a server may
// ignore it), so that the whole object is sent, 200, at the pace the
// client reads it — as it does for ranges that add up to more than the
// object, which http.ServeContent would send whole. Otherwise it gives rd
// the ranges, so that it reads ahead within each, not across the gaps
// between them. A Range an If-Range makes ServeContent ignore is left
// alone. An error is a fetch's (of the DAG's interior nodes).
func (s *Server) limitRanges(r *http.Request, rec *record, rd *objectReader) error {
	hdr := r.Header.Get("Range")
	if !strings.HasPrefix(hdr, "bytes=") || !strings.Contains(hdr, ",") || !ifRangeHolds(r, rec.etag) {
		return nil
	}
	spans := rangeSpans(hdr, rd.size)
	if len(spans) < 2 {
		return nil
	}
	sum := int64(0)
	for _, sp := range spans {
		sum += sp.end - sp.start
	}
	if sum > rd.size {
		r.Header.Del("Range")
		return nil
	}
	loads, err := rd.rangeLoads(spans, maxRangeLoads)
	if err != nil {
		return err
	}
	if loads > maxRangeLoads {
		r.Header.Del("Range")
		s.m.rangesIgnored.Inc()
		s.log.Debug("multi-range request answered whole: its ranges would fetch too many chunks", "object", rd.obj.ID,
			"client", r.RemoteAddr, "ranges", len(spans))
		return nil
	}
	rd.spans = spans
	return nil
}

// rangeLoads counts the leaves not cached that reading spans in order
// loads without sending whole — the leaves under each span's first and
// last byte, unless the one read just before — and stops once past limit.
// Leaves inside a span are sent whole and not counted.
func (r *objectReader) rangeLoads(spans []span, limit int) (int, error) {
	loads := 0
	last := int64(-1) // offset of the leaf read last
	count := func(pos int64) (leaf, error) {
		lf, err := r.locate(pos)
		if err != nil {
			return leaf{}, err
		}
		if lf.off != last && !lf.isData && !r.f.cache.holds(r.obj.ID, lf.cid) {
			loads++
		}
		last = lf.off
		return lf, nil
	}
	for _, sp := range spans {
		lf, err := count(sp.start)
		if err != nil {
			return 0, err
		}
		if sp.end > lf.off+lf.size {
			if _, err := count(sp.end - 1); err != nil {
				return 0, err
			}
		}
		if loads > limit {
			break
		}
	}
	return loads, nil
}

// aheadEnd is where read-ahead stops for a read at pos: the end of the
// answer's range holding pos when it has several (none outside them), else
// end.
func (r *objectReader) aheadEnd(pos int64) int64 {
	if len(r.spans) == 0 {
		return r.end
	}
	e := pos
	for _, sp := range r.spans {
		if sp.start <= pos && pos < sp.end {
			e = max(e, sp.end)
		}
	}
	return min(e, r.end)
}
