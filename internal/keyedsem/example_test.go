package keyedsem_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/satchel-net/satchel/internal/keyedsem"
)

// Two slots per client and three in all: a client's third request waits
// for one of its own, and gives up when its context ends.
func Example() {
	sem := keyedsem.New[string](2, 3)
	ctx := context.Background()
	for range 2 {
		if err := sem.Acquire(ctx, "10.0.0.1"); err != nil {
			panic(err)
		}
	}
	fmt.Println("another client:", sem.TryAcquire("10.0.0.2"))
	wait, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	err := sem.Acquire(wait, "10.0.0.1")
	fmt.Println("the first client's third:", errors.Is(err, keyedsem.ErrKeyFull))
	sem.Release("10.0.0.1")
	fmt.Println("after a release:", sem.TryAcquire("10.0.0.1"), sem.Held())
	// Output:
	// another client: true
	// the first client's third: true
	// after a release: true 3
}
