// Package verify makes a chain client trust the validators, not the node
// it talks to. Its Transport wraps any chain.Transport that also gives
// signed headers (a Source: the transports of chain/node, and the RPC
// transport): every query is asked with proofs (chain.QueryProven), the
// header that signs the answer's height is verified with CometBFT's light
// client rules from a trust root (the genesis validators, or a header the
// operator trusts), every proof is checked against the header's app hash,
// and the answer is computed from the proven reads alone. An endpoint
// whose answer or header fails is refused with a *LieError naming it
// (errors.Is(err, ErrLyingEndpoint)).
//
//	trust, err := verify.TrustGenesisFile("genesis.json")
//	vt, err := verify.New(ctx, transport, trust, verify.WithEndpoint(url))
//	c := chain.NewClient(vt) // every read is proven
//
// Answers are at the height before the node's last (whose app hash the
// last header signs), or at the height of the client's last committed
// submission, so a client reads its own writes; never below a height the
// transport has answered at before. Block events pass through unproven.
//
// No header older than the trusting period (WithTrustingPeriod, 14 days by
// default) starts a verification: a root that old fails with an
// *ExpiredError (errors.Is(err, ErrTrustExpired)). As CometBFT's light
// client keeps its trusted store, a caller keeps the latest verified
// header and starts the next Transport from it:
//
//	last := vt.Latest()                          // save it (height, hash, time, chain ID)
//	vt, err = verify.New(ctx, t, last.Trust())   // later, while it is within the period
package verify
