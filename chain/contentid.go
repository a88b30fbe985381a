package chain

import (
	"slices"

	"github.com/ipfs/go-cid"
)

// ContentIDCodecs are the codecs a data object's content ID may have: a
// UnixFS root (dag-pb) or, for an object of one chunk, the raw chunk.
var ContentIDCodecs = []uint64{cid.DagProtobuf, cid.Raw}

// BlacklistForms returns the canonical content IDs under which the
// blacklist may hold the bytes that canonical (a canonical content ID)
// names: the CID itself and the CIDv1 of every other codec in
// ContentIDCodecs with the same multihash. The same bytes under another
// codec are the same content, so checking every form catches a root
// blacklisted as dag-pb and registered as raw, or the reverse. It returns
// nil when canonical does not parse.
func BlacklistForms(canonical string) []string {
	id, err := cid.Decode(canonical)
	if err != nil {
		return nil
	}
	out := []string{id.String()}
	for _, codec := range ContentIDCodecs {
		if codec != id.Type() {
			out = append(out, cid.NewCidV1(codec, id.Hash()).String())
		}
	}
	return out
}

// objectCodecOK reports whether a content ID's codec is one a data
// object may have.
func objectCodecOK(canonical string) (uint64, bool) {
	id, err := cid.Decode(canonical)
	if err != nil {
		return 0, false
	}
	return id.Type(), slices.Contains(ContentIDCodecs, id.Type())
}

// ValidateObjectContentID canonicalises a data object's content ID and
// checks its codec is in ContentIDCodecs. Errors carry ErrBadContentID's
// code.
func ValidateObjectContentID(c string) (string, error) {
	canon, err := CanonicalContentID(c)
	if err != nil {
		return "", err
	}
	if codec, ok := objectCodecOK(canon); !ok {
		return "", Errorf(ErrBadContentID, "content ID %s has codec 0x%x; a data object's content ID is a dag-pb (UnixFS root) or raw CID", canon, codec)
	}
	return canon, nil
}
