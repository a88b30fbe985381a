// Package client is the library apps use to put content into a Satchel
// network and get it back: it chunks and hashes, registers the data object
// on chain, pushes every chunk to the bag's storage providers with their
// signed receipts, waits for the chain to accept the object, resumes
// interrupted uploads, and reads objects back from the fastest providers,
// verifying every byte.
//
//	c, err := client.New(client.Config{Chain: chainClient, Key: memberKey, StateDir: dir})
//	if err != nil { ... }
//	defer c.Close()
//	obj, err := c.PutFile(ctx, chain.ChannelBag(1), "video.mp4", client.WithProgress(draw))
//	...
//	_, err = c.Get(ctx, client.ObjectRef(obj.Bag, obj.ID), w)
//
// # Uploading a file
//
// PutFile (and Put with an io.ReaderAt) follows Satchel's upload flow, which
// the chain governs:
//
//  1. The chain names the bag's storage buckets and their operators' peer
//     IDs and addresses; the DHT (FindProviders of p2p.BagKey) gives live
//     addresses when those fail. The client connects to N of them: N is
//     WithRedundancy, by default — and at most — the number of buckets
//     storing the bag.
//  2. The file is read once to chunk and hash it: the root CID is not known
//     before the last byte. Memory stays at about WithWindow chunks
//     whatever the file size. Providers take the chunks of an unregistered
//     object only under a storage contract (WithContracts): the consigned
//     providers get every chunk as soon as it is cut, in their contract's
//     upload session. Without contracts nothing is sent yet.
//  3. With the root known, the member's key signs MsgRegisterDataObjects
//     (bag, size, content ID); the chain checks vouchers, the maximum object
//     size and the blacklist. The size is checked before anything is read;
//     the blacklist names content IDs, so blacklisted content is refused
//     only here, once hashed, and providers that took its chunks under a
//     contract drop them (DROP) at once.
//  4. The chunks each provider lacks — all of them, without contracts — are
//     read again from the file by offset and pushed in object mode, each
//     with its merkle proof for the registered object. A provider lost on
//     the way is replaced by another provider of the bag, which gets them
//     the same way. They are not hashed a second time: every provider
//     checks every byte against the chunk's CID, and when one reports a
//     mismatch the client checks the chunk and fails with ErrFileChanged if
//     the file changed. A failed storage link is retried, and a provider
//     that keeps failing is replaced.
//  5. Each provider holding every chunk binds the object (BIND); one of
//     them accepts it on chain. PutFile returns once every chunk holds its
//     N verified, signed receipts and the chain accepted the object.
//
// Progress (WithProgress) reports the Point Network states: the File
// (FileState), each Chunk (ChunkState, counted) and each StorageLink — one
// chunk on its way to one provider — (LinkState, counted). A link follows
// its store exchange step by step (store.ChunkPush.OnStep): created,
// agreed, sending segment map, sending data, data received, asking for
// signature, signed, or failed from any of them. A chunk the provider
// already holds goes from created (or a sending state) straight to data
// received. The caller side writes a chunk's segment map, data and SIGN
// back to back once the provider agreed, so a link asks for the signature
// as soon as the provider reports the data received.
//
// # When a provider dies
//
// A provider whose store stream breaks or whose dial is refused (it is
// restarting) is not given up at once: the upload dials it again by peer
// ID, with backoff capped at 2 seconds, for up to WithReconnectWait
// (DefaultReconnectWait, 30 seconds). Back within it, the provider is sent
// only the chunks it has not signed a receipt for. A provider that refuses
// a chunk (its disk full, not authorised) is not waited for: the
// *NoProviderError names its reason, and says to check that the providers
// run only for those that could not be reached.
//
// A provider that fails otherwise, or stays unreachable, is given up for the upload and another provider of
// the bag takes its place, receiving every chunk. When no other provider is
// left (N equals the number of buckets storing the bag, the default), the
// upload fails with a *NoProviderError: by default it succeeds only with
// every provider it wanted (WithMinRedundancy, default N). A caller that
// accepts less sets WithMinRedundancy lower; the upload then completes with
// the live providers — every chunk holds a verified receipt from each of
// them, each bound the object, the chain accepted it — and the returned
// Object is Degraded. The bag's other
// providers sync the object from them when they come back. Object.Providers lists who holds it.
//
// # Resuming
//
// Running PutFile again after an interruption resumes it. Chunks a provider
// already holds — from the interrupted run, or any other upload of the same
// content — are answered "already stored" without their bytes, so a
// provider is sent only what it never received, and Object.Resumed counts
// the chunks that cost nothing. (The run streams to the bag's providers in
// the chain's order, as the interrupted run did; one that replaced a lost
// provider with a spare may now send the spare's chunks to the provider
// that is back.) The object is registered once: the upload state in a
// goleveldb database in Config.StateDir, keyed by the upload's content (bag,
// root CID and chunk size) rather than by a path, records the registration,
// so a run that stopped after it finds the object the interrupted run
// registered (or the pending object its registration created, if it
// stopped before recording it), with the receipts and binds it kept: a
// chunk copy with a kept receipt is not pushed again at all. The
// state of a finished upload is removed. Upload, fed from a stream, does not
// resume.
//
// # Streamed uploads
//
// A stream's size and root are not known until its end, and a storage
// contract is proposed for a size, so a stream is not pushed as it is
// written. Upload (an io.Writer with Commit and Abort, which Put uses for
// readers that cannot be read twice) spools it to a temporary file in
// os.TempDir (TMPDIR): the disk must have room for the whole stream. The
// maximum object size is checked as bytes arrive, and WithProgress
// reports the bytes spooled. Commit then uploads the spooled file exactly
// as PutFile uploads a file — under contracts when the put asks for them,
// else registered first and pushed with proofs, with lost providers
// replaced — and removes the file; Abort removes it without sending
// anything. A streamed upload does not resume after an interruption (the
// spool is gone); upload files with PutFile for that. An upload given up —
// a failed Commit, content found blacklisted or changed — has providers
// that took its chunks under a contract drop them (DROP) at once; an
// interrupted file leaves them for the next run.
//
// # Downloading
//
// Open (and Get, GetRange) resolves an object ID through the chain (bag and
// content ID) or takes a CID, finds the bag's providers (chain and DHT; every
// active storage operator when no bag is named), asks them whether they hold
// the root, and reads the root block. The Reader then walks the DAG,
// fetching only the interior nodes over the range asked, and fetches leaves
// in parallel — WithFetchWindow ahead of the one being written — each from
// the provider expected to deliver it first, judged by measured latency and
// throughput and the reads already queued on it. Every block is verified
// against its CID; a provider that sends wrong bytes is skipped for the rest
// of the download, one that fails repeatedly likewise, and the block is read
// from another. Bytes are written in order. ReadAt keeps the last chunk it
// read, so reads in small pieces in order (an io.SectionReader, as
// http.ServeContent uses) fetch each chunk once; once reads go on in
// order, it fetches the next chunks with the one asked for, in parallel
// (up to 8 MiB, at most WithFetchWindow chunks), and keeps them.
//
// # Errors
//
// Chain refusals keep their sentinels (errors.Is(err, chain.ErrBucketFull),
// chain.ErrObjectTooLarge, chain.ErrUploadingBlocked, chain.ErrBlacklisted,
// chain.ErrBagNotFound) and messages that name the bag and the next step.
// ErrNoProviderReachable (a *NoProviderError) lists every provider tried and
// why it failed. Calls after Client.Close, and reads after Reader.Close,
// fail with ErrClosed. A writer given to Get that panics makes Get fail,
// and a progress callback that panics is called no more (logged at Warn);
// neither ends the program. The library logs at Debug and Info and
// never prints.
package client
