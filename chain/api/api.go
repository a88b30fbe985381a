package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/verify"
)

// QueryTimeout bounds one request's query.
const QueryTimeout = 30 * time.Second

// Option configures a handler.
type Option func(*handler)

// WithLogger sets the logger (default slog.Default() with
// component=chain/api).
func WithLogger(l *slog.Logger) Option {
	return func(h *handler) {
		if l != nil {
			h.log = l
		}
	}
}

type handler struct {
	t   chain.Transport
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns the HTTP/JSON API over t (see the package doc).
func NewHandler(t chain.Transport, opts ...Option) http.Handler {
	h := &handler{t: t, log: slog.Default().With("component", "chain/api"), mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	routes := map[string]func(*http.Request) (string, any, error){
		"/api/v1/info":        fixed(chain.QueryInfo),
		"/api/v1/params":      fixed(chain.QueryParams),
		"/api/v1/validators":  fixed(chain.QueryValidators),
		"/api/v1/app-version": fixed(chain.QueryAppVersion),
		"/api/v1/bags": func(r *http.Request) (string, any, error) {
			p, err := page(r)
			return chain.QueryBagsPage, p, err
		},
		"/api/v1/bags/{bag}": func(r *http.Request) (string, any, error) {
			return chain.QueryBag, chain.BagID(r.PathValue("bag")), nil
		},
		"/api/v1/bags/{bag}/objects": func(r *http.Request) (string, any, error) {
			p, err := page(r)
			return chain.QueryObjectsPage, chain.BagObjectsRequest{Bag: chain.BagID(r.PathValue("bag")), PageRequest: p}, err
		},
		"/api/v1/bags/{bag}/objects/{id}": func(r *http.Request) (string, any, error) {
			id, err := uintArg(r.PathValue("id"), "object ID")
			return chain.QueryObject, chain.ObjectRef{Bag: chain.BagID(r.PathValue("bag")), ID: chain.ObjectID(id)}, err
		},
		"/api/v1/objects/{id}": func(r *http.Request) (string, any, error) {
			id, err := uintArg(r.PathValue("id"), "object ID")
			return chain.QueryObjectByID, chain.ObjectID(id), err
		},
		"/api/v1/objects/pending": func(r *http.Request) (string, any, error) {
			p, err := page(r)
			return chain.QueryPendingObjects, chain.PendingObjectsRequest{Bag: chain.BagID(r.URL.Query().Get("bag")), PageRequest: p}, err
		},
		"/api/v1/objects/by-content-id/{cid}": func(r *http.Request) (string, any, error) {
			p, err := page(r)
			return chain.QueryObjectsByContentID, chain.ContentObjectsRequest{ContentID: r.PathValue("cid"), PageRequest: p}, err
		},
		"/api/v1/storage/buckets/{id}": func(r *http.Request) (string, any, error) {
			id, err := uintArg(r.PathValue("id"), "storage bucket ID")
			return chain.QueryStorageBucket, chain.StorageBucketID(id), err
		},
		"/api/v1/storage/buckets/{id}/bags": func(r *http.Request) (string, any, error) {
			id, err := uintArg(r.PathValue("id"), "storage bucket ID")
			if err != nil {
				return "", nil, err
			}
			p, err := page(r)
			return chain.QueryStorageBucketBags, chain.StorageBucketBagsRequest{Bucket: chain.StorageBucketID(id), PageRequest: p}, err
		},
		"/api/v1/workers/{group}/{id}/buckets": func(r *http.Request) (string, any, error) {
			id, err := uintArg(r.PathValue("id"), "worker ID")
			if err != nil {
				return "", nil, err
			}
			p, err := page(r)
			return chain.QueryWorkerBuckets, chain.WorkerBucketsRequest{Group: chain.Group(r.PathValue("group")), Worker: chain.WorkerID(id), PageRequest: p}, err
		},
	}
	for pattern, route := range routes {
		h.mux.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, route) })
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func fixed(path string) func(*http.Request) (string, any, error) {
	return func(*http.Request) (string, any, error) { return path, nil, nil }
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, route func(*http.Request) (string, any, error)) {
	path, arg, err := route(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	var data []byte
	if arg != nil {
		if data, err = json.Marshal(arg); err != nil {
			h.fail(w, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), QueryTimeout)
	defer cancel()
	b, err := h.t.Query(ctx, path, data)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// fail writes err with its status.
func (h *handler) fail(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, chain.CodeInternal
	var ce *chain.Error
	switch {
	case errors.Is(err, verify.ErrLyingEndpoint):
		status = http.StatusBadGateway
	case errors.As(err, &ce):
		code = ce.Code
		switch {
		case errors.Is(err, chain.ErrNotFound):
			status = http.StatusNotFound
		case errors.Is(err, chain.ErrUnknownQuery):
			// The upstream node does not know the query (an older
			// binary): not a proven "not found".
			status = http.StatusBadGateway
		case errors.Is(err, chain.ErrInvalid):
			status = http.StatusBadRequest
		}
	}
	if status >= 500 {
		h.log.Warn("query failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": err.Error(), "code": code})
}

// page reads cursor and limit from the query string.
func page(r *http.Request) (chain.PageRequest, error) {
	q := r.URL.Query()
	p := chain.PageRequest{Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return p, chain.Errorf(chain.ErrInvalid, "limit %q: want a number from 1 to %d", s, chain.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}

func uintArg(s, what string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, chain.Errorf(chain.ErrInvalid, "%s %q: want a number", what, s)
	}
	return n, nil
}
