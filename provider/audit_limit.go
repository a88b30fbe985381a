package provider

// Results per auditor. A node relays the results about bags it does not
// store for their providers to check; it cannot check the auditor, so it
// takes at most ResultRate a second from one (the rest ignored: not
// delivered, not relayed), and a flood about random bags stops at the
// first hop instead of reaching every node. An auditor paces its own
// results at half that (auditor.publishPace), so a round of many small
// objects is not cut. Results about a node's own bags are not limited:
// their auditor must operate one of the bag's buckets.
const (
	// ResultRate and ResultBurst are the results a second (and at once)
	// a node takes from one auditor.
	ResultRate  = 50
	ResultBurst = 500
	// maxResultAuthors bounds the per-auditor limiters kept; the least
	// recently heard auditor's is dropped first.
	maxResultAuthors = 4096
)
