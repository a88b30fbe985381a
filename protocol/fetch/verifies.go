package fetch

// VerifiesBlocks reports true: every block ReadBlock (and GetBlock)
// returns was verified against its CID, so a caller that must serve only
// verified bytes (a distributor) need not hash them again.
func (f *Client) VerifiesBlocks() bool { return true }
