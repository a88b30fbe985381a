package chain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestErrors(t *testing.T) {
	err := chain.Errorf(chain.ErrBucketFull, "storage bucket 3 is full by objects (10 of 10 objects used, 1 more asked); ask the storage lead to raise its objects limit")
	if !errors.Is(err, chain.ErrBucketFull) || !errors.Is(err, chain.ErrVoucherExceeded) || errors.Is(err, chain.ErrZeroSize) {
		t.Fatal("Is by code")
	}
	wrapped := fmt.Errorf("upload: %w", err)
	if chain.CodeOf(wrapped) != chain.CodeBucketFull || chain.CodeOf(nil) != chain.CodeOK || chain.CodeOf(errors.New("x")) != chain.CodeInternal {
		t.Fatal("CodeOf")
	}
	back := chain.ErrorFromCode(chain.CodeBucketFull, err.Error())
	if !errors.Is(back, chain.ErrBucketFull) || back.Error() != err.Error() {
		t.Fatalf("ErrorFromCode = %v", back)
	}
	if chain.ErrorFromCode(0, "ignored") != nil {
		t.Fatal("code 0 is success")
	}
	if e := chain.ErrorFromCode(chain.CodeTooFewBuckets, ""); e.Error() != chain.ErrTooFewBuckets.Msg {
		t.Fatalf("empty log: %v", e)
	}
	if e := chain.ErrorFromCode(9999, ""); chain.CodeOf(e) != 9999 {
		t.Fatal("unknown codes keep their number")
	}
	if !errors.Is(chain.ErrorFromCode(chain.CodeBagNotFound, "bag x"), chain.ErrNotFound) {
		t.Fatal("not-found codes match ErrNotFound")
	}
	if errors.Is(chain.ErrNotFound, chain.ErrBagNotFound) {
		t.Fatal("the umbrella does not match a specific sentinel")
	}
}
