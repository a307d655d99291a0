package backend

// CountStale records a pooled connection discarded before reuse because the backend
// had closed it or sent bytes on it while idle.
func (b *Backend) CountStale() { b.stale.Add(1) }
