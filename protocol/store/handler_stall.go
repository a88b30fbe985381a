package store

// An exchange waiting for its uploader (for the segment map, the data or
// SIGN) holds memory reserved in the node's budget. The stream's read
// deadline does not bound that wait: any frame renews it, including frames
// about exchanges long ended, which the handler ignores, and requests it
// refuses. Nor does some data: a peer sending a few real bytes of an agreed
// chunk every so often would keep every agreed chunk's reservation. So the
// stream must make progress: an exchange that has waited for its uploader
// IdleTimeout (since it entered the state that asks for its next step),
// while the stream carried fewer than MinProgressBytes of chunk data since
// it last carried that many, IdleTimeout or more ago, is ended FAILED,
// releasing what it holds. Only data taken into a chunk being received
// counts: an uploader sending data for any exchange keeps those queued
// behind it (a slow uplink with a deep window), but refused requests,
// failed exchanges, data for skipped chunks or cheap frames keep nothing.

// advance records that n data bytes were taken on the stream; once
// MinProgressBytes have come since the stream last progressed, it
// progresses now.
func (c *storeConn) advance(n int) {
	c.mu.Lock()
	c.moved += n
	if c.moved >= MinProgressBytes {
		c.progress, c.moved = c.h.cfg.now(), 0
	}
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
// IdleTimeout while the stream made no progress (MinProgressBytes of data)
// for as long.
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
		c.failed(ex, "less than %d KiB of data in %v: exchange %d given up; push the chunk again", MinProgressBytes>>10, IdleTimeout, ex.id)
	}
}
