package httpserve

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// serve serves h on a loopback listener limited to conns connections
// (0: unlimited) until the test ends, returning its address.
func serve(t *testing.T, h http.Handler, conns int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if conns > 0 {
		ln = LimitConns(ln, conns)
	}
	srv := Server(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return addr
}

// Past n requests being served, one more is answered 503 with Retry-After
// at once; once one ends, requests are served again.
func TestLimitRequests(t *testing.T) {
	entered, release := make(chan struct{}, 2), make(chan struct{})
	h := LimitRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}), 2)
	addr := serve(t, h, 0)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := http.Get("http://" + addr + "/slow")
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	<-entered
	<-entered
	resp, err := http.Get("http://" + addr + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a request over the bound = %d, Retry-After %q; want 503, 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	resp, err = http.Get("http://" + addr + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a request once the others ended = %d; want 200", resp.StatusCode)
	}
}

// A header over MaxHeaderBytes is refused (431), not read into memory.
func TestServerHeaderLimit(t *testing.T) {
	addr := serve(t, http.NotFoundHandler(), 0)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 4*MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header = %d; want 431", 4*MaxHeaderBytes, resp.StatusCode)
	}
}

// With the connection cap reached, a further connection is not served
// until one closes.
func TestLimitConns(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), 1)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr) // the kernel accepts it, the server may not
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	answer := func(c net.Conn, r *bufio.Reader, within time.Duration) error {
		_ = c.SetReadDeadline(time.Now().Add(within))
		if _, err := r.Peek(1); err != nil {
			return err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	first, fr := dial()
	if err := answer(first, fr, 30*time.Second); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second, sr := dial()
	// The server must not answer while first is open: no answer within a
	// while is what the cap looks like from outside.
	if err := answer(second, sr, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection over the cap was served: %v", err)
	}
	first.Close()
	if err := answer(second, sr, 30*time.Second); err != nil {
		t.Fatalf("the waiting connection once the first closed: %v", err)
	}
}
