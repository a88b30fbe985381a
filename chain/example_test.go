package chain_test

import (
	"bytes"
	"fmt"

	"github.com/satchel-net/satchel/chain"
)

// A member signs a transaction registering a file in its channel's bag; a
// node decodes it, which verifies the signature.
func ExampleSignTx() {
	key, _ := chain.KeyFromSeed(bytes.Repeat([]byte{7}, 32))
	bag, _ := chain.ParseBagID("dynamic:channel:1337")
	msg := chain.MsgRegisterDataObjects{
		Bag:     bag,
		Objects: []chain.ObjectSpec{{Size: 1 << 20, ContentID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}},
	}
	tx, err := chain.SignTx(key, 1, msg)
	if err != nil {
		fmt.Println(err)
		return
	}

	decoded, err := chain.DecodeTx(tx)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := decoded.Msg.(chain.MsgRegisterDataObjects)
	fmt.Println(decoded.Signer == key.Account(), decoded.Nonce, decoded.Msg.Type())
	fmt.Println(reg.Bag, reg.Objects[0].Size)

	// Any change to the signed bytes breaks the signature.
	tampered := bytes.Replace(tx, []byte(`"size":1048576`), []byte(`"size":1048577`), 1)
	_, err = chain.DecodeTx(tampered)
	fmt.Println(err != nil)
	// Output:
	// true 1 register_data_objects
	// dynamic:channel:1337 1048576
	// true
}

// Runtime errors carry stable codes: a client maps a transaction result
// back to the sentinel it can branch on.
func ExampleErrorFromCode() {
	err := chain.ErrorFromCode(chain.CodeBucketFull, "bag dynamic:channel:7: storage bucket 3 is full by objects (10 of 10 objects used, 1 more asked); ask the storage lead to raise its objects limit")
	fmt.Println(err)
	fmt.Println(chain.CodeOf(err) == chain.CodeBucketFull)
	// Output:
	// bag dynamic:channel:7: storage bucket 3 is full by objects (10 of 10 objects used, 1 more asked); ask the storage lead to raise its objects limit
	// true
}
