package ctxsleep_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/satchel-net/satchel/internal/ctxsleep"
)

// Sleep reports true once d passed, and false as soon as the context ends
// (or when it had ended already, even with d zero).
func TestSleep(t *testing.T) {
	if !ctxsleep.Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context reported the context ended")
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if ctxsleep.Sleep(ended, 0) {
		t.Fatal("Sleep with an ended context reported d passed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- ctxsleep.Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case passed := <-done:
		if passed {
			t.Fatal("Sleep of an hour reported it passed when its context ended")
		}
	case <-time.After(time.Minute):
		t.Fatal("Sleep did not return when its context ended")
	}
}

func ExampleSleep() {
	ctx, cancel := context.WithCancel(context.Background())
	attempts := 0
	try := func() error {
		if attempts++; attempts == 3 {
			cancel() // the owner stops: the loop ends at its next pause
		}
		return errors.New("busy")
	}
	for {
		err := try()
		if err == nil {
			return
		}
		if !ctxsleep.Sleep(ctx, time.Millisecond) {
			fmt.Println("gave up after", attempts, "attempts:", err)
			return
		}
	}
	// Output: gave up after 3 attempts: busy
}
