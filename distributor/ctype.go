package distributor

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/satchel-net/satchel/chain"
)

// defaultContentType is the type of an answer whose content type could not
// be sniffed without what it does not read (chain records carry no type).
const defaultContentType = "application/octet-stream"

// sniffAndSeek returns obj's content type and, for a read starting at
// start > 0, starts fetching the leaf there. Every answer names the type
// (browsers and CDN edges need it, RFC 9110 §8.3): a read from the start
// sniffs it from the leaf it reads first; a seek into an object whose type
// is not known yet fetches the first leaf too, at once with the leaf under
// the seek and under the answer's miss slot, and sniffs it there. The type
// is remembered (with the cache's state, across restarts), so an object is
// sniffed once: later seeks fetch only the leaves they read. The sniff is
// a nicety: a seek whose first leaf cannot be had (a provider lost it, or
// a HEAD, which fetches nothing) is answered as defaultContentType, not
// remembered, rather than failed.
func (s *Server) sniffAndSeek(r *http.Request, rec *record, rd *objectReader, keep bool, start int64) (string, error) {
	obj := rec.obj
	if start <= 0 {
		return s.contentType(obj, rd)
	}
	if ctype := s.knownContentType(obj.ID); ctype != "" {
		return ctype, rd.prefetch(start)
	}
	srd, err := newObjectReader(rd.ctx, s.fetch, rec, keep, rd.slot)
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
	if perr != nil || cerr == nil || rd.ctx.Err() != nil {
		return ctype, errors.Join(perr, cerr)
	}
	s.log.Info("content type not sniffed: the first leaf is unavailable; the range is served as "+defaultContentType, "object", obj.ID, "err", cerr)
	return defaultContentType, nil
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
