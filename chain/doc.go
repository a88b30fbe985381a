// Package chain is Satchel's data directory: the on-chain authority over
// who stores and serves what. It holds the types of the directory (bags,
// storage buckets, distribution families and buckets, data objects,
// members, channels, working groups), the signed transactions that change
// it, the events they emit, the queries that read it, and Client, the one
// way other packages read and write it.
//
// The state machine lives in chain/state and the CometBFT application and
// embedded node in chain/node; engine.go is the contract between them.
//
// # Accounts and transactions
//
// An Account is the lower-case hex of an ed25519 public key. Every
// transaction is a JSON envelope {chainId, signer, nonce, type, body,
// signature}; the ed25519 signature covers a domain tag, the chain ID, the
// signer, the nonce, the type tag and the exact body bytes. Each nonce of
// an account is accepted once: above the account's highest used nonce
// (gaps allowed), or unused and at most 64 below it (an anti-replay
// window), so concurrent submissions of one key may commit in any order.
// A transaction whose message fails changes nothing but using its nonce,
// so its public bytes cannot be replayed later.
//
// # Errors
//
// Runtime errors are *Error values with stable codes (see errors.go);
// ErrorFromCode maps a result code back so errors.Is works on the client:
//
//	c := chain.NewClient(transport)
//	res, err := c.Submit(ctx, key, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs})
//	if errors.Is(err, chain.ErrBucketFull) { ... }
//	reg, _ := chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
package chain
