// Package node runs the data directory on CometBFT v1 (ABCI 2.0): App
// adapts a chain.Machine to CometBFT's application interface, Node embeds
// a complete CometBFT node in the process, and its Transport — or Dial's,
// over another node's RPC — is what chain.Client talks through.
//
// By default a Node is the one validator of a new network, with every
// file (config, node key, validator key, genesis) made in code on first
// use, listening on loopback only:
//
//	n, err := node.New(home, node.WithGenesis(chain.DefaultGenesis(storageLead, distributionLead)))
//	err = n.Start(ctx)
//	defer n.Stop()
//	client := chain.NewClient(n.Transport())
//
// A second node joins as a full node with the first one's genesis file and
// peer address:
//
//	full, err := node.New(home2,
//		node.WithGenesisDoc(n.GenesisFile()),
//		node.WithPersistentPeers(n.P2PAddress()))
//
// # Blocks
//
// Blocks are paced by CometBFT's timeout_commit, DefaultBlockInterval
// (100 ms): under load a block commits every ~100 ms with everything the
// mempool holds. An idle chain does not spin: it waits for a transaction,
// which is proposed at once, or makes an empty block every
// DefaultEmptyBlockInterval (1 s). A transaction therefore commits in about
// one block: a few milliseconds on an idle single validator, ~100 ms under
// load (BenchmarkSignedTxCommit reports it). The app hash only changes when
// a block writes state, so CometBFT's "proof block" after a changing block
// is the only extra block. WithEmptyBlockInterval(0) makes a block every
// interval, busy or not; consensus gossip is tuned to the interval so full
// nodes keep pace.
//
// # Restarts
//
// The machine persists its own state and reports its height and app hash
// through ABCI Info; CometBFT replays only the blocks the machine has not
// committed, so a restarted node resumes where it stopped. Blocks and their
// results are never pruned: BlockEvents works for any height.
//
// # Events
//
// Each chain.Event of a transaction is one ABCI event of type EventType
// ("satchel") with the event's JSON in attribute AttrEvent (not indexed)
// and its type in AttrType. Transports decode them back; BlockEvents
// returns those of the block's successful transactions only.
package node
