package audit

// WithLeaveHook sets fn, called when the handler sees a challenger leave
// before its answer is complete (tests wait on it).
func WithLeaveHook(fn func()) HandlerOption {
	return func(c *handlerConfig) { c.onLeave = fn }
}
