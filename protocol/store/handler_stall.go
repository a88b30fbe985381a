package store

// An exchange waiting for its uploader (for the segment map, the data or
// SIGN) holds memory reserved in the node's budget. The stream's read
// deadline does not bound that wait: any frame renews it, including frames
// about exchanges long ended, which the handler ignores, and requests it
// refuses. So an exchange that has waited for its uploader IdleTimeout
// (since it entered the state that asks for its next step) while no data bytes came
// on the stream for IdleTimeout is ended FAILED, releasing what it holds.
// Only data moves the stream: an uploader sending data for any exchange
// keeps those queued behind it (a slow uplink with a deep window), but
// refused requests, failed exchanges or cheap frames keep nothing.

// advance records that data bytes arrived on the stream.
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

// expireStalled ends FAILED the exchanges that waited for the uploader
// IdleTimeout while no data came on the stream for as long.
func (c *storeConn) expireStalled() {
	now := c.h.cfg.now()
	c.mu.Lock()
	if now.Sub(c.progress) < IdleTimeout {
		c.mu.Unlock()
		return
	}
	var stalled []*storeExchange
	for _, ex := range c.exchanges {
		if waitsForUploader(ex) && now.Sub(ex.since) >= IdleTimeout {
			stalled = append(stalled, ex)
		}
	}
	c.mu.Unlock()
	for _, ex := range stalled {
		c.failed(ex, "no data for %v: exchange %d given up; push the chunk again", IdleTimeout, ex.id)
	}
}
