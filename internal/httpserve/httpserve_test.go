package httpserve

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
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

// With the connection cap reached, the server accepts a further
// connection only once one it serves closes. The server runs in a synctest
// bubble on in-memory connections, so "not accepted" is seen when every
// goroutine is blocked (the server in its Accept), not as no answer within
// a while: a server past its cap would have accepted the connection by then.
func TestLimitConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newPipeListener()
		srv := Server(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		var mu sync.Mutex
		var accepted []net.Conn // in the order the server took them
		srv.ConnState = func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				accepted = append(accepted, c)
				mu.Unlock()
			}
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(LimitConns(ln, 1)) }()
		var clients []net.Conn
		t.Cleanup(func() { // every goroutine ends before the bubble does, even on failure
			for _, c := range clients {
				c.Close()
			}
			srv.Close()
			<-served
		})
		nAccepted := func() int {
			synctest.Wait() // the server and every connection's goroutines wait
			mu.Lock()
			defer mu.Unlock()
			return len(accepted)
		}

		first := ln.dial()
		clients = append(clients, first)
		if err := roundTrip(first); err != nil {
			t.Fatalf("first connection: %v", err)
		}
		second := ln.dial()
		clients = append(clients, second)
		answered := make(chan error, 1)
		go func() { answered <- roundTrip(second) }()
		if n := nAccepted(); n != 1 {
			t.Fatalf("the server took %d connections with the cap at 1 and the first open", n)
		}
		first.Close()
		if n := nAccepted(); n != 2 {
			t.Fatalf("the server took %d connections after the first closed; want the waiting one too", n)
		}
		if err := <-answered; err != nil {
			t.Fatalf("the waiting connection once the first closed: %v", err)
		}
	})
}

// roundTrip sends one request on c and reads its answer.
func roundTrip(c net.Conn) error {
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// pipeListener is a listener of in-memory connections (net.Pipe), whose
// blocking synctest sees.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn, 8), closed: make(chan struct{})}
}

// dial queues a connection for Accept, returning the client's end.
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
