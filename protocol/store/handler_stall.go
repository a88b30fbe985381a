package store

// An exchange waiting for its uploader (for the segment map, the data or
// SIGN) holds memory reserved in the node's budget. The stream's read
// deadline does not bound that wait: any frame renews it, including frames
// about exchanges long ended, which the handler ignores. So the handler
// keeps the time anything last advanced an exchange on the stream (a frame
// for a live exchange, or a reply), and once that is IdleTimeout old, ends
// every exchange still waiting for the uploader FAILED, releasing what it
// holds. An uploader that is sending data for any exchange advances them
// all: one slow uplink does not fail exchanges queued behind each other.

// advance records that an exchange on the stream made progress.
func (c *storeConn) advance() {
	c.mu.Lock()
	c.progress = c.h.cfg.now()
	c.mu.Unlock()
}

// waitsForUploader reports whether ex waits for a frame of the uploader's
// rather than for the provider's own work (authorising, storing,
// forwarding, signing, binding). Call with c.mu.
func waitsForUploader(ex *storeExchange) bool {
	switch ex.state {
	case exAgreed, exReceiving:
		return true
	case exStored, exSkipping:
		return !ex.forwarded && !ex.signWanted
	}
	return false
}

// expireStalled ends FAILED the exchanges waiting for the uploader once
// nothing advanced any exchange for IdleTimeout.
func (c *storeConn) expireStalled() {
	c.mu.Lock()
	if c.h.cfg.now().Sub(c.progress) < IdleTimeout {
		c.mu.Unlock()
		return
	}
	var stalled []*storeExchange
	for _, ex := range c.exchanges {
		if waitsForUploader(ex) {
			stalled = append(stalled, ex)
		}
	}
	c.mu.Unlock()
	for _, ex := range stalled {
		c.failed(ex, "no frame advanced any exchange for %v: exchange %d given up; push the chunk again", IdleTimeout, ex.id)
	}
}
