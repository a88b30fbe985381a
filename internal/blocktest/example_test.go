package blocktest_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/provider/blockstore"
)

func ExampleChange() {
	dir, _ := os.MkdirTemp("", "blocktest")
	defer os.RemoveAll(dir)
	bs, err := blockstore.Open(dir, blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bs.Close()
	data := []byte("a chunk of a data object")
	c := chunker.ChunkCID(data)
	_ = bs.Put(c, data)

	err = blocktest.Change(bs, c, func(b []byte) { b[0] ^= 1 })
	_, gerr := bs.Get(c)
	fmt.Println(err, errors.Is(gerr, blockstore.ErrCorrupt))
	// Output: <nil> true
}
