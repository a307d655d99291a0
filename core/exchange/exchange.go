// Package exchange holds the rules of one proxied request that every front follows
// alike, whatever its wire: which header fields a hop keeps, which requests may be
// sent again, and the proxy's own error answers (DESIGN section 10.3). Fronts call
// it; it calls none of them.
package exchange
