package chunker_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/satchel-net/satchel/chunker"
)

func ExampleSum() {
	f := strings.NewReader(strings.Repeat("satchel! ", 1000)) // any io.Reader, e.g. an *os.File

	res, err := chunker.Sum(context.Background(), f,
		chunker.WithChunkSize(1000),
		chunker.WithChunkFunc(func(c chunker.Chunk) error {
			// Push c.Data to a peer here; it is only valid during the call.
			fmt.Printf("chunk %d: %d bytes at %d, %s\n", c.Index, len(c.Data), c.Offset, c.CID)
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("root:", res.Root, res.Size, "bytes")

	// A provider holding only the root checks that a chunk belongs at its index.
	proof, err := res.Proof(7)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("proof of chunk 7:", chunker.VerifyProof(res.Root, res.Chunks[7].CID, 7, proof))
	fmt.Println("same proof, index 6:", chunker.VerifyProof(res.Root, res.Chunks[7].CID, 6, proof) != nil)
	// Output:
	// chunk 0: 1000 bytes at 0, bafkreignuw4gwysjyvegimsgawupyheqweps3csji32yapnicgbox74fzy
	// chunk 1: 1000 bytes at 1000, bafkreifkqx7guy3i7yw4scu77j3dnpsdh77pgkwulaszpsqbxpq6hvnbwu
	// chunk 2: 1000 bytes at 2000, bafkreib44vxoxjng7xn4he3ewgdlw7dnti5kprjjkahcbaadris3zbd6ca
	// chunk 3: 1000 bytes at 3000, bafkreichrfbhseelelepgtejrsdz4fj2ciomlk2mvvcio3w7i2vhtabrbi
	// chunk 4: 1000 bytes at 4000, bafkreidzai3xvgnu3fkkosvevodvjfkwfiporsgfinpqm3procfsgkrp7e
	// chunk 5: 1000 bytes at 5000, bafkreibqzs4hn3br52romnymjhohqwnrvz47nd5p335dkhypkg7wl7rpde
	// chunk 6: 1000 bytes at 6000, bafkreig7rrzl6q6vgxdlwjygvjiwfcduka6vmgrx3r67xxuishf53xxdme
	// chunk 7: 1000 bytes at 7000, bafkreifg7exybwek4szv7xdb6suncwt4nlfxdruuvikn4sitwun7x5bvgy
	// chunk 8: 1000 bytes at 8000, bafkreibeusilx6smkbfmllhbhwgwjddaoabpo4jdp7vyrz3r66gdjxbniu
	// root: bafybeifkolcwszz3bkmc343ytys3mse7aje2i55xrwsshymbr2dcbmsu6e 9000 bytes
	// proof of chunk 7: <nil>
	// same proof, index 6: true
}
