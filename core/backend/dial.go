package backend

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// DialAddr is the address a data plane last resolved the backend's host to. It lives
// on the backend, so it goes when the backend leaves the set.
type DialAddr struct {
	Addr netip.AddrPort
	// Name is the host:port to look up again; "" for a literal address.
	Name string
	// At is when Addr was resolved.
	At time.Time
	// Refreshing is set while a new lookup of Name is under way.
	Refreshing atomic.Bool
}

// DialAddr returns the address last resolved for b, or nil.
func (b *Backend) DialAddr() *DialAddr { return b.dial.Load() }

// SetDialAddr records the address resolved for b.
func (b *Backend) SetDialAddr(d *DialAddr) { b.dial.Store(d) }
