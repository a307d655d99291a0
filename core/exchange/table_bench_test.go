package exchange

import (
	"fmt"
	"testing"
)

// BenchmarkTableRoute is what a request pays for routing at the exchange (issue 25):
// Table.Route over 1,000 host routes then 1,000 path-prefix routes, all to one pool,
// for the last host route, the last prefix, a request that matches none (the default
// pool), and a table with no routes at all.
func BenchmarkTableRoute(b *testing.B) {
	def, svc := testUpstream("default"), testUpstream("svc")
	var specs []RouteSpec
	for i := range 1000 {
		specs = append(specs, RouteSpec{Match: Match{Host: fmt.Sprintf("svc%d.example.com", i)}, Route: Route{Action: ToPool, Upstream: svc}})
	}
	for i := range 1000 {
		specs = append(specs, RouteSpec{Match: Match{PathPrefix: fmt.Sprintf("/svc%d/", i)}, Route: Route{Action: ToPool, Upstream: svc}})
	}
	routed, bare := NewTable(1, specs, def), NewTable(1, nil, def)
	for _, bc := range []struct {
		name       string
		tb         *Table
		host, path string
		want       int
	}{
		{"last of 1000 hosts", routed, "svc999.example.com", "/x", 999},
		{"last of 1000 prefixes", routed, "other.test", "/svc999/x", 1999},
		{"no match after 2000", routed, "other.test", "/none", -1},
		{"no routes", bare, "svc999.example.com", "/x", -1},
	} {
		method, host, path := []byte("GET"), []byte(bc.host), []byte(bc.path)
		if r := bc.tb.Route(method, host, path, nil); r.Index != bc.want {
			b.Fatalf("Route(%s%s) = route %d, want %d", bc.host, bc.path, r.Index, bc.want)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.tb.Route(method, host, path, nil)
			}
		})
	}
}
