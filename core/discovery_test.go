//go:build unix

package main

// Backends from DNS (DESIGN section 4, servers.discovery) with a real DNS server on
// loopback, and several instances over one configuration.

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// dnsServer is an authoritative DNS server on loopback whose records a test changes.
type dnsServer struct {
	addr string
	mu   sync.Mutex
	srv  map[string][]string // SRV name -> "target:port" (targets answer A 127.0.0.1)
	a    map[string][]string // A name -> addresses
}

// startDNS serves DNS over UDP on a free loopback port until the test ends.
func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), srv: map[string][]string{}, a: map[string][]string{}}
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.answer)}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return d
}

// set makes the SRV record name list targets ("host:port"); none removes it.
func (d *dnsServer) set(name string, targets ...string) {
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
			for _, tp := range d.srv[q.Name] {
				host, port, _ := net.SplitHostPort(tp)
				p, _ := strconv.Atoi(port)
				hdr.Rrtype = dns.TypeSRV
				m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr, Priority: 10, Weight: 10, Port: uint16(p), Target: dns.Fqdn(host)})
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
	if st.Discovery == nil || st.Discovery.LastError != "" || st.Discovery.ResolvedAt.IsZero() {
		t.Errorf("status discovery = %+v, want a recent lookup and no error", st.Discovery)
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
