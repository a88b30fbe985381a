// Package blockstore keeps a storage provider's blocks — chunk bytes and the
// interior dag-pb nodes of data objects — in files on disk, with goleveldb as
// the index only (block → size, object → manifest, bag → objects, object and
// upload-session references to blocks, the quarantine). goleveldb writes
// 1 MiB values at a few tens of MB/s; files take them at disk speed, so no
// block byte ever goes into the index.
//
// Layout of a store directory:
//
//	blocks/<shard>/<cid>   one file per block; shard = next-to-last 2 chars of the CID
//	tmp/                   blocks being written (emptied on Open)
//	quarantine/<cid>       corrupt blocks set aside
//	index/                 goleveldb
//	CLEAN                  present only while the store is closed cleanly
//
// One file per block rather than append-only segments: blocks are shared
// between objects and deleted one by one (refcounted), which a file makes an
// unlink instead of a segment compaction; the rename makes a block appear
// whole or not at all, so recovery needs no log replay; and measured here,
// concurrent file-per-block durable writes (~430-460 MB/s with 2-8 writers)
// match an fsynced append-only file (~350-370 MB/s).
//
// A Put verifies the bytes against the CID, writes them to a temp file,
// fsyncs it, renames it into blocks/ and fsyncs the directory, and only then
// writes the index entry, synced, so an indexed block is always whole on
// disk and a block is held, durably, when Put returns. Every index write
// that adds a block or a reference (Put, session references, manifests) and
// every deletion is synced, and Close ends with a synced write before it
// leaves the CLEAN marker. Open after an unclean shutdown still indexes every
// block file the index lacks that verifies against its name (a crash between
// the rename and the index write; held in a recovery session for
// RecoveredTTL unless an object claims it), removes those that do not, and
// drops index entries whose file is gone. The blocks one deletion frees go
// in one synced index write, then their files are unlinked. A shard
// directory's creation is made durable (blocks/ fsynced) before a block is
// renamed into it.
// Every Get verifies the bytes again against the CID (the scrub and audits
// read through it); a block that no longer matches is quarantined and
// reported with ErrCorrupt so the node can fetch it again from a peer.
// Serving reads (GetFast, what the fetch protocol reads) check a CRC-32C
// kept in each block's index entry instead, which finds what disks do to
// bytes for a few percent of the hash's CPU: the receiver verifies the CID
// anyway. A block stored before the index kept CRCs is hashed on its first
// serving read and gets its CRC then; one failing the CRC is hashed, and
// quarantined when that fails too (see checksum.go).
//
// Blocks are shared between objects (content addressing): DeleteObject only
// deletes the blocks no other object or open upload session references.
// Upload sessions hold the chunks of uploads whose object is not bound yet
// and expire on their own (ExpireSessions; ExpireSessionsWithin brings
// forward the expiry of sessions an object made redundant). Session adds
// are acknowledged once durable, their index writes grouped into one fsync
// (see commit.go); block files use direct I/O where the file system allows
// it (see fileio.go). The recovery session is not one of them: an
// object that claims a recovered block takes it over, so the block goes
// when the object goes.
//
//	bs, err := blockstore.Open(filepath.Join(dataDir, "blocks"))
//	...
//	defer bs.Close()
//	err = bs.Put(c, data)          // durable when it returns
//	data, err := bs.Get(c)         // verified against c
//	data, err = bs.GetFast(c)      // checked against its CRC-32C, for serving
package blockstore
