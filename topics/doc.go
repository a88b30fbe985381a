// Package topics implements the Storj contract topic matrix: the publish /
// subscribe topics under which nodes offer and look for storage contracts.
// A topic grades four criteria of a contract — Size, Duration, Availability
// and Speed — each with a descriptor, Low (0x01), Medium (0x02) or High
// (0x03), behind a one-byte publication prefix (PrefixContract, 0x0f), and
// travels as the lower-case hex of those five bytes: a small, often changed,
// always available, fast web asset is
//
//	topics.New(topics.Low, topics.Medium, topics.High, topics.High).String() // "0f01020303"
//
// and a hard-drive backup is "0f03030101". Parse and FromBytes read topics
// back and say exactly what is wrong with a malformed one (Parse takes upper-
// or lower-case hex; String always writes lower case); Classify turns concrete
// Requirements into a topic:
//
//	t, err := topics.Classify(topics.Requirements{
//		SizeBytes:    5 << 20,             // 5 MiB
//		Duration:     60 * 24 * time.Hour, // 60 days
//		Availability: 99,                  // percent
//		SpeedMbps:    20,
//	}) // t.String() == "0f01020303"
//
// # Boundaries
//
// The seed gives the advisory ranges with shared endpoints ("0mb - 8mb",
// "8mb - 16mb", ...). This package reads them as follows, and Classify, the
// per-criterion Classify functions and Descriptor.Range all follow from one
// table:
//
//   - A value equal to a boundary belongs to the lower descriptor: each
//     descriptor covers the values above its lower bound up to and including
//     its upper bound, and Low includes zero. A requirement of exactly 8 MB is
//     Low, because a node subscribed to Low takes data "up to 8 MB", and
//     grading a boundary value up would demand more than the contract needs.
//   - MB is 10^6 bytes, as the seed writes it and as storage vendors and
//     network speeds use it; Mbps is 10^6 bits per second. A size in MiB is
//     converted first: 8 MiB is 8,388,608 bytes, more than 8 MB, so Medium.
//   - A day is 24 hours.
//   - Values above the top of High (32 MB, 270 days, 99%, 32 Mbps) are High,
//     not an error: the ranges are advisory, High is the most demanding
//     degree there is, and a larger requirement still needs the nodes that
//     subscribe to it.
//   - Availability is a percentage from 0 to 100 inclusive; 100% is High and
//     anything above 100 is an error. So are a negative duration, a
//     negative or NaN availability, and a negative, NaN or infinite speed;
//     these errors wrap ErrRequirement.
//
// # Prefixes
//
// The seed defines one publication type, contracts, and says the prefix is a
// namespace: contracts are not the only publication. Prefix is that
// namespace byte, with a table of types, so another type is one constant and
// one table entry:
//
//   - 0x0f PrefixContract: storage contract proposals (package contracts).
//   - 0x0a PrefixAudit: audit results, published on the one-byte topic
//     AuditTopic ("0a"). No descriptors follow it, so it is not Known as a
//     five-byte topic and cannot be parsed or encoded as one.
//
// Parse rejects prefixes outside the table, and reserved ones, with
// ErrPrefix. Every topic string that parsed before the table grew still
// parses to the same topic.
package topics
