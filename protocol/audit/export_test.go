package audit

// WithLeaveHook sets fn, called when the handler sees a challenger leave
// before its answer is complete (tests wait on it).
func WithLeaveHook(fn func()) HandlerOption {
	return func(c *handlerConfig) { c.onLeave = fn }
}

// HoldAnswerMemory takes n bytes of h's answer memory, as answers being
// sent would, until release.
func HoldAnswerMemory(h *Handler, n int64) (release func(), ok bool) {
	if !h.guard.hold(n) {
		return nil, false
	}
	return func() { h.guard.unhold(n) }, true
}

// AnswerMemoryHeld is the answer memory h's answers hold now.
func AnswerMemoryHeld(h *Handler) int64 {
	h.guard.mu.Lock()
	defer h.guard.mu.Unlock()
	return h.guard.held
}

// MaxAnswerMemory is maxAnswerMemory.
const MaxAnswerMemory = maxAnswerMemory
