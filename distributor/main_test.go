package distributor_test

import (
	"net/http"
	"os"
	"testing"
	"time"
)

// TestMain gives the tests' plain HTTP requests (http.Get, the default
// client) a time limit: a distributor that stopped answering fails the
// request waiting for it, with its URL, instead of hanging the whole test
// binary until its timeout. Two minutes is far beyond any answer here.
func TestMain(m *testing.M) {
	http.DefaultClient.Timeout = 2 * time.Minute
	os.Exit(m.Run())
}
