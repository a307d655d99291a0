//go:build unix

package e2e

// Backends from DNS (DESIGN section 4, servers.discovery) with a real DNS server on
// loopback, and several instances over one configuration.

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchyard-lb/switchyard/core/status"
)

// dnsServer is an authoritative DNS server on loopback whose records a test changes.
type dnsServer struct {
	addr string
	mu   sync.Mutex
	srv  map[string][]srvTarget // SRV name -> its targets
	a    map[string][]string    // A name -> addresses
}

// srvTarget is one record of an SRV name. Targets under hosts.test answer A
// 127.0.0.1; others (nowhere.test) have no address.
type srvTarget struct {
	hostPort         string // "target:port"
	priority, weight uint16
}

// startDNS serves DNS over UDP on a free loopback port until the test ends.
func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), srv: map[string][]srvTarget{}, a: map[string][]string{}}
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.answer)}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return d
}

// set makes the SRV record name list targets ("host:port"), all of priority 10 and
// weight 10; none removes it.
func (d *dnsServer) set(name string, targets ...string) {
	recs := make([]srvTarget, len(targets))
	for i, tp := range targets {
		recs[i] = srvTarget{hostPort: tp, priority: 10, weight: 10}
	}
	d.setSRV(name, recs...)
}

// setSRV makes the SRV record name list targets; none removes it.
func (d *dnsServer) setSRV(name string, targets ...srvTarget) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(targets) == 0 {
		delete(d.srv, dns.Fqdn(name))
		return
	}
	d.srv[dns.Fqdn(name)] = targets
}

func (d *dnsServer) answer(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range r.Question {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 1}
		switch {
		case q.Qtype == dns.TypeSRV && d.srv[q.Name] != nil:
			for _, t := range d.srv[q.Name] {
				host, port, _ := net.SplitHostPort(t.hostPort)
				p, _ := strconv.Atoi(port)
				hdr.Rrtype = dns.TypeSRV
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr, Priority: t.priority, Weight: t.weight, Port: uint16(p), Target: dns.Fqdn(host)})
			}
		case q.Qtype == dns.TypeA && d.a[q.Name] != nil:
			for _, ip := range d.a[q.Name] {
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(ip)})
			}
		case q.Qtype == dns.TypeA && strings.HasSuffix(q.Name, ".hosts.test."):
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP("127.0.0.1")})
		case q.Qtype == dns.TypeAAAA && (d.a[q.Name] != nil || strings.HasSuffix(q.Name, ".hosts.test.")):
			// no IPv6 addresses: an empty answer
		default:
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// portOf is the port of a backend URL.
func portOf(url string) string { return url[strings.LastIndexByte(url, ':')+1:] }

func TestSRVDiscoveryFollowsTheRecord(t *testing.T) {
	d := startDNS(t)
	var urls []string
	for range 4 {
		_, u := startBackend(t, "-work", "1ms", "-workers", "64")
		urls = append(urls, u)
	}
	const name = "_http._tcp.web.test"
	d.set(name, "b0.hosts.test:"+portOf(urls[0]), "b1.hosts.test:"+portOf(urls[1]))
	lb := startCore(t, map[string]any{
		"servers":      map[string]any{"discovery": map[string]any{"srv": name, "resolver": d.addr, "interval": "200ms"}},
		"health_check": fastChecks(nil),
	})
	counts := countBy(t, postMany(lb.url+"/requests", 60, 4))
	if counts[hostOf(urls[0])] == 0 || counts[hostOf(urls[1])] == 0 || len(counts) != 2 {
		t.Fatalf("the two SRV backends served %v, want both and only them", counts)
	}
	st := lb.status(t)
	if sd := st.Discovery; sd == nil || sd.LastError != "" || sd.ResolvedAt.IsZero() || sd.Record != name || sd.Resolver != d.addr || sd.Backends != 2 || sd.Lookups.OK == 0 {
		t.Errorf("status discovery = %+v, want a recent lookup of %s on %s that found 2 backends, and no error", st.Discovery, name, d.addr)
	}
	if !strings.Contains(lb.Log(), "backends=2") {
		t.Errorf("the start-up line does not count the 2 discovered backends:\n%s", lb.Log())
	}
	for _, b := range st.Backends {
		if b.Source != "dns" {
			t.Errorf("backend %s source %q, want dns", b.URL, b.Source)
		}
	}

	// The record moves to the other pair under load: no request fails.
	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "load running", func() bool { return sent.Load() > 100 })
	d.set(name, "b2.hosts.test:"+portOf(urls[2]), "b3.hosts.test:"+portOf(urls[3]))
	waitUntil(t, "only the new pair in the pool", func() bool {
		bs := lb.status(t).Backends
		if len(bs) != 2 {
			return false
		}
		for _, b := range bs {
			if b.URL != urls[2] && b.URL != urls[3] || b.State != "up" {
				return false
			}
		}
		return true
	})
	at := sent.Load()
	waitUntil(t, "load on the new pair", func() bool { return sent.Load() > at+200 })
	close(stop)
	if bad := failures(); len(bad) > 0 {
		t.Errorf("%d of %d requests failed while the record moved; first: %d %s %v", len(bad), sent.Load(), bad[0].status, bad[0].body, bad[0].err)
	}
	counts = countBy(t, postMany(lb.url+"/requests", 40, 4))
	if counts[hostOf(urls[0])]+counts[hostOf(urls[1])] != 0 {
		t.Errorf("after the move: %v, want none on the old pair", counts)
	}

	// NXDOMAIN keeps the last known set serving, and says so.
	d.set(name)
	waitUntil(t, "the failed lookup in status", func() bool {
		st := lb.status(t)
		return st.Discovery != nil && strings.Contains(st.Discovery.LastError, "no such host")
	})
	if e := lb.status(t).Discovery.LastError; !strings.Contains(e, "resolving SRV "+name+" on "+d.addr+": no such host") {
		t.Errorf("status discovery.last_error = %q, want it to name the server asked, %s", e, d.addr)
	}
	countBy(t, postMany(lb.url+"/requests", 40, 4))
	if bs := lb.status(t).Backends; len(bs) != 2 {
		t.Errorf("after NXDOMAIN, %d backends, want the last known 2", len(bs))
	}
	if !strings.Contains(lb.Log(), "lookup failed; keeping the last known backends") {
		t.Errorf("the log does not tell of the failed lookup")
	}
}

func TestARecordDiscoveryWithAPort(t *testing.T) {
	d := startDNS(t)
	_, u := startBackend(t, "-work", "0")
	d.mu.Lock()
	d.a["web.a.test."] = []string{"127.0.0.1"}
	d.mu.Unlock()
	port, _ := strconv.Atoi(portOf(u))
	lb := startCore(t, map[string]any{
		"servers":      map[string]any{"discovery": map[string]any{"dns": "web.a.test", "port": port, "resolver": d.addr, "interval": "1s"}},
		"health_check": fastChecks(nil),
	})
	if counts := countBy(t, postMany(lb.url+"/requests", 10, 2)); counts[hostOf(u)] != 10 {
		t.Errorf("A-record backend served %v, want all 10", counts)
	}
}

func TestTwoInstancesShareOneConfig(t *testing.T) {
	d := startDNS(t)
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	const name = "_http._tcp.shared.test"
	d.set(name, "a.hosts.test:"+portOf(a), "b.hosts.test:"+portOf(b))
	first := startCore(t, map[string]any{
		"servers":      map[string]any{"discovery": map[string]any{"srv": name, "resolver": d.addr, "interval": "500ms"}},
		"health_check": fastChecks(nil),
	})
	// The second instance runs on the same file, on addresses of its own.
	listen, admin := freeAddr(t), freeAddr(t)
	p, addr := start(t, coreReady, coreBin, "-config", first.path, "-listen", listen, "-admin", admin)
	second := &lbInstance{proc: p, url: "http://" + addr, path: first.path, cfg: first.cfg}
	if m := adminAddrRe.FindStringSubmatch(p.Log()); m != nil {
		second.admin = "http://" + m[1]
	}
	if second.url != "http://"+listen || second.admin != "http://"+admin {
		t.Fatalf("second instance at %s (admin %s), want %s (admin %s) from -listen and -admin", second.url, second.admin, listen, admin)
	}
	for _, l := range []*lbInstance{first, second} {
		if counts := countBy(t, postMany(l.url+"/requests", 20, 2)); len(counts) != 2 {
			t.Errorf("instance %s served %v, want both discovered backends", l.url, counts)
		}
	}
	// One edit of the file: both apply it.
	cfg := first.cfg
	section(cfg, "load_balancer")["strategy"] = "weighted"
	gen := first.save(t, cfg)
	first.applied(t, gen)
	second.applied(t, gen)
	for _, l := range []*lbInstance{first, second} {
		if st := l.status(t); st.Strategy.Name != "weighted" {
			t.Errorf("instance %s runs %s after the edit, want weighted", l.url, st.Strategy.Name)
		}
	}
}

// srvConfig is a servers section discovering the SRV record name on d every
// interval.
func srvConfig(d *dnsServer, name, interval string) map[string]any {
	return map[string]any{"discovery": map[string]any{"srv": name, "resolver": d.addr, "interval": interval}}
}

func TestSRVWeightsAreTheBackendsWeights(t *testing.T) {
	d := startDNS(t)
	var urls []string
	for range 3 {
		_, u := startBackend(t, "-work", "0")
		urls = append(urls, u)
	}
	const name = "_http._tcp.weights.test"
	d.setSRV(name, srvTarget{"w0.hosts.test:" + portOf(urls[0]), 10, 60},
		srvTarget{"w1.hosts.test:" + portOf(urls[1]), 10, 30}, srvTarget{"w2.hosts.test:" + portOf(urls[2]), 10, 10})
	lb := startCore(t, map[string]any{
		"load_balancer": map[string]any{"strategy": "weighted"},
		"servers":       srvConfig(d, name, "1s"),
		"health_check":  fastChecks(nil),
	})
	const n = 300
	counts := countBy(t, postMany(lb.url+"/requests", n, 4))
	for i, want := range []float64{0.6, 0.3, 0.1} {
		share := float64(counts[hostOf(urls[i])]) / n
		t.Logf("SRV weight %2.0f: %3d of %d requests (%.1f%%)", want*100, counts[hostOf(urls[i])], n, share*100)
		if share < want-0.05 || share > want+0.05 {
			t.Errorf("the backend of SRV weight %.0f took %.1f%% of the requests, want %.0f%% ± 5", want*100, share*100, want*100)
		}
	}
	for _, b := range lb.status(t).Backends {
		if w := map[string]int{urls[0]: 60, urls[1]: 30, urls[2]: 10}[b.URL]; b.Weight != w {
			t.Errorf("status: backend %s weight %d, want the record's %d", b.URL, b.Weight, w)
		}
	}
}

func TestSRVPriorityBackupTakesOverWhenThePrimariesAreDown(t *testing.T) {
	d := startDNS(t)
	var procs []*proc
	var urls []string
	for range 3 {
		p, u := startBackend(t, "-work", "0")
		procs, urls = append(procs, p), append(urls, u)
	}
	const name = "_http._tcp.backup.test"
	d.setSRV(name, srvTarget{"p0.hosts.test:" + portOf(urls[0]), 10, 1},
		srvTarget{"p1.hosts.test:" + portOf(urls[1]), 10, 1}, srvTarget{"backup.hosts.test:" + portOf(urls[2]), 20, 1})
	lb := startCore(t, map[string]any{"servers": srvConfig(d, name, "1s"), "health_check": fastChecks(nil)})

	counts := countBy(t, postMany(lb.url+"/requests", 60, 4))
	if counts[hostOf(urls[2])] != 0 || counts[hostOf(urls[0])] == 0 || counts[hostOf(urls[1])] == 0 {
		t.Errorf("with the priority-10 targets up: %v, want none on the priority-20 one", counts)
	}
	for _, b := range lb.status(t).Backends {
		want := map[string]int{urls[0]: 0, urls[1]: 0, urls[2]: 1}[b.URL]
		if b.Priority != want || !b.Healthy {
			t.Errorf("status: backend %s priority %d healthy %v, want priority %d, healthy", b.URL, b.Priority, b.Healthy, want)
		}
	}

	// Both primaries go down: the backup takes every request.
	port0 := portOf(urls[0])
	procs[0].stop(t, syscall.SIGKILL)
	procs[1].stop(t, syscall.SIGKILL)
	waitUntil(t, "the primaries down", func() bool {
		h0, _, _ := lb.backendState(t, urls[0])
		h1, _, _ := lb.backendState(t, urls[1])
		return !h0 && !h1
	})
	if counts := countBy(t, postMany(lb.url+"/requests", 30, 4)); counts[hostOf(urls[2])] != 30 {
		t.Errorf("with the primaries down: %v, want all 30 on the backup", counts)
	}

	// One primary back: the backup takes none again.
	startBackendOn(t, port0, "-work", "0")
	waitUntil(t, "a primary up again", func() bool { h, _, _ := lb.backendState(t, urls[0]); return h })
	if counts := countBy(t, postMany(lb.url+"/requests", 30, 4)); counts[hostOf(urls[0])] != 30 {
		t.Errorf("with one primary back: %v, want all 30 on it", counts)
	}
}

func TestSRVTargetWithoutAddressLeavesOutOnlyItself(t *testing.T) {
	d := startDNS(t)
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	const name = "_http._tcp.partial.test"
	d.set(name, "a.hosts.test:"+portOf(a))
	lb := startCore(t, map[string]any{"servers": srvConfig(d, name, "200ms"), "health_check": fastChecks(nil)})

	// A target without an address joins the record with a valid new one: the new
	// one is added all the same.
	d.set(name, "a.hosts.test:"+portOf(a), "ghost.nowhere.test:80", "b.hosts.test:"+portOf(b))
	waitUntil(t, "the new target up", func() bool {
		return slices.ContainsFunc(lb.status(t).Backends, func(s status.Backend) bool { return s.URL == b && s.Healthy })
	})
	st := lb.status(t)
	if len(st.Backends) != 2 {
		t.Errorf("status lists %d backends, want the 2 with an address", len(st.Backends))
	}
	if sd := st.Discovery; sd == nil || sd.Backends != 2 || !strings.Contains(sd.LastError, "ghost.nowhere.test. on "+d.addr+": no such host") || sd.Lookups.Partial == 0 {
		t.Errorf("status discovery = %+v, want 2 backends, a partial lookup, and last_error naming the target left out and %s", sd, d.addr)
	}
	if counts := countBy(t, postMany(lb.url+"/requests", 20, 2)); counts[hostOf(a)] == 0 || counts[hostOf(b)] == 0 {
		t.Errorf("served %v, want both targets with an address", counts)
	}
	if n := metric(t, lb, `lb_discovery_lookups_total\{pool="default",result="partial"\}`); n == 0 {
		t.Errorf(`lb_discovery_lookups_total{result="partial"} = %v, want at least 1`, n)
	}
	if n := metric(t, lb, `lb_discovery_backends\{pool="default"\}`); n != 2 {
		t.Errorf("lb_discovery_backends = %v, want 2", n)
	}
}

func TestDiscoveryResolverListRefusedFirst(t *testing.T) {
	d := startDNS(t)
	_, a := startBackend(t, "-work", "0")
	const name = "_http._tcp.list.test"
	d.set(name, "a.hosts.test:"+portOf(a))
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := pc.LocalAddr().String() // nothing listens there: queries are refused
	pc.Close()
	lb := startCore(t, map[string]any{
		"servers":      map[string]any{"discovery": map[string]any{"srv": name, "resolver": []string{refused, d.addr}, "interval": "100ms"}},
		"health_check": fastChecks(nil),
	})
	if counts := countBy(t, postMany(lb.url+"/requests", 10, 2)); counts[hostOf(a)] != 10 {
		t.Errorf("served %v, want all 10 on the target found through the second resolver", counts)
	}
	waitUntil(t, "several lookups", func() bool {
		return metric(t, lb, `lb_discovery_lookups_total\{pool="default",result="partial"\}`) >= 8
	})
	sd := lb.status(t).Discovery
	want := "resolving SRV " + name + " on " + refused + ": connection refused"
	if sd == nil || sd.Resolver != d.addr || sd.Record != name || sd.Backends != 1 || sd.LastError != want {
		t.Errorf("status discovery = %+v, want resolver %s, record %s, 1 backend, last_error %q", sd, d.addr, name, want)
	}
	// Logged once, not once per lookup: the text names no ephemeral port.
	if n := strings.Count(lb.Log(), "connection refused"); n != 1 {
		t.Errorf("the refusal is logged %d times over %d lookups, want once:\n%s", n, int(metric(t, lb, `lb_discovery_lookups_total\{pool="default",result="partial"\}`)), lb.Log())
	}
}
