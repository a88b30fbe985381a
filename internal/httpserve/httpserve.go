// Package httpserve holds what satchel's small HTTP servers (the query API
// of `satchel chain api`, a provider's status server) share so that no
// client can hold them up: timeouts on every phase of a request, a small
// header limit, a bound on connections and one on requests being served.
package httpserve

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/netutil"
)

// The servers' limits. A request has no body worth more than its header;
// WriteTimeout leaves room for a proven read that waits for the next block.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = time.Minute
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 16 << 10
)

// Server returns a server of h with the package's timeouts and header limit.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// LimitConns returns ln accepting at most n connections at once: the next
// waits in the listen backlog until one closes (an idle one does within
// IdleTimeout), so open connections never exhaust file descriptors.
func LimitConns(ln net.Listener, n int) net.Listener {
	return netutil.LimitListener(ln, n)
}

// RetryAfter is the Retry-After, in seconds, of a request refused busy.
const RetryAfter = 1

// LimitRequests returns h serving at most n requests at once; one more is
// answered 503 with Retry-After at once, holding nothing, its body
// {"error": message} as the servers' other errors.
func LimitRequests(h http.Handler, n int) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("server busy: %d requests being served; retry in %d s", n, RetryAfter)})
			return
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}
