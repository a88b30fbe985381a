package fetch

// GetMemory is what the handler reserves for each GET it holds, for tests
// that fill a budget with a known number of GETs.
const GetMemory = getMemory

// WithAbandonBudgetNoRefill sets a peer's abandonment budget to burst
// bytes that never refill (WithAbandonBudget takes no rate of 0), so what
// peers abandon is bounded by the burst alone.
func WithAbandonBudgetNoRefill(burst int64) Option {
	return func(c *config) { c.abandonRate, c.abandonBurst = 0, burst }
}

// WithHeldGETs sets how many GETs of one stream the handler holds a
// reply's memory for at once (MaxHeldGETs otherwise), for benchmarks that
// measure what that bound costs.
func WithHeldGETs(n int) Option {
	return func(c *config) { c.heldGETs = n }
}
