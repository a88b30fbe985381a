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

// Poll returns once the condition holds, and the context's error if it never does.
func TestPoll(t *testing.T) {
	calls := 0
	if err := ctxsleep.Poll(context.Background(), func() bool { calls++; return calls == 3 }); err != nil || calls != 3 {
		t.Fatalf("Poll of a condition true at the third check: %v after %d checks", err, calls)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ctxsleep.Poll(ctx, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poll of a condition never true: %v, want the context's deadline", err)
	}
}
