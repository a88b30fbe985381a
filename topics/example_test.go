package topics_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/satchel-net/satchel/topics"
)

// A web asset is small, changes often (medium duration), must always be
// available and should transfer quickly: the seed's first example.
func ExampleNew_webAsset() {
	t := topics.New(topics.Low, topics.Medium, topics.High, topics.High)
	fmt.Println(t)
	fmt.Printf("%#v\n", t.Bytes())
	// Output:
	// 0f01020303
	// []byte{0xf, 0x1, 0x2, 0x3, 0x3}
}

// A backup is large, kept long, rarely read and need not be fast: the
// seed's second example, read back from its topic string.
func ExampleParse_backup() {
	t, err := topics.Parse("0f03030101")
	if err != nil {
		panic(err)
	}
	fmt.Println("prefix", t.Prefix)
	for _, c := range topics.Criteria() {
		d := t.Descriptor(c)
		fmt.Printf("%-12s %-6s %s\n", c, d, d.Range(c))
	}
	// Output:
	// prefix contract
	// size         high   16-32 MB
	// duration     high   90-270 days
	// availability low    0-50%
	// speed        low    0-6 Mbps
}

func ExampleParse_error() {
	_, err := topics.Parse("0f0102030")
	fmt.Println(err)
	fmt.Println(errors.Is(err, topics.ErrLength))

	_, err = topics.Parse("0f01040303")
	fmt.Println(err)
	fmt.Println(errors.Is(err, topics.ErrDescriptor))
	// Output:
	// topic "0f0102030": odd length 9, want 10 hex digits
	// true
	// topic "0f01040303": duration descriptor 0x04 at byte 2, want low (0x01), medium (0x02) or high (0x03)
	// true
}

func ExampleClassify() {
	webAsset, err := topics.Classify(topics.Requirements{
		SizeBytes:    5 << 20,             // 5 MiB
		Duration:     60 * 24 * time.Hour, // 60 days
		Availability: 99,                  // percent
		SpeedMbps:    20,
	})
	if err != nil {
		panic(err)
	}
	backup, err := topics.Classify(topics.Requirements{
		SizeBytes:    30_000_000,
		Duration:     365 * 24 * time.Hour, // beyond High's 270 days: still High
		Availability: 10,
		SpeedMbps:    1,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(webAsset)
	fmt.Println(backup)
	// Output:
	// 0f01020303
	// 0f03030101
}
