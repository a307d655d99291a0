package discovery

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchyard-lb/switchyard/core/config"
)

// zone is an authoritative DNS server on loopback: SRV records by name, A records
// (127.0.0.x) by host; any other name is NXDOMAIN.
type zone struct {
	addr    string
	srv     map[string][]dns.SRV
	a       map[string][]string
	queries atomic.Int64
}

// serveZone serves z over UDP until the test ends.
func serveZone(t *testing.T, srv map[string][]dns.SRV, a map[string][]string) *zone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zone{addr: pc.LocalAddr().String(), srv: srv, a: a}
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.answer)}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return z
}

func (z *zone) answer(w dns.ResponseWriter, r *dns.Msg) {
	z.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	for _, q := range r.Question {
		name := strings.TrimSuffix(q.Name, ".")
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 1, Rrtype: q.Qtype}
		switch {
		case q.Qtype == dns.TypeSRV && z.srv[name] != nil:
			for _, s := range z.srv[name] {
				s.Hdr, s.Target = hdr, dns.Fqdn(s.Target)
				m.Answer = append(m.Answer, &s)
			}
		case q.Qtype == dns.TypeA && z.a[name] != nil:
			for _, ip := range z.a[name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(ip)})
			}
		case q.Qtype == dns.TypeAAAA && z.a[name] != nil:
			// IPv4 only: an empty answer
		default:
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

// refusing is a loopback UDP address nothing listens on: a query there is refused
// (ICMP port unreachable).
func refusing(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

func srv(target string, port, priority, weight uint16) dns.SRV {
	return dns.SRV{Target: target, Port: port, Priority: priority, Weight: weight}
}

// hosts answers a.test to f.test with 127.0.0.1 to .6.
var hosts = map[string][]string{
	"a.test": {"127.0.0.1"}, "b.test": {"127.0.0.2"}, "c.test": {"127.0.0.3"},
	"d.test": {"127.0.0.4"}, "e.test": {"127.0.0.5"}, "f.test": {"127.0.0.6"},
}

func TestResolveSRV(t *testing.T) {
	type want struct {
		url              string
		weight, priority int
	}
	tests := []struct {
		name    string
		records []dns.SRV
		want    []want
		wantErr []string // substrings of Result.Err, none when empty
	}{
		{"weights", []dns.SRV{srv("a.test", 80, 10, 60), srv("b.test", 80, 10, 30), srv("c.test", 80, 10, 10)},
			[]want{{"http://127.0.0.1:80", 60, 0}, {"http://127.0.0.2:80", 30, 0}, {"http://127.0.0.3:80", 10, 0}}, nil},
		{"weight 0 counts as 1", []dns.SRV{srv("a.test", 80, 0, 0), srv("b.test", 81, 0, 5)},
			[]want{{"http://127.0.0.1:80", 1, 0}, {"http://127.0.0.2:81", 5, 0}}, nil},
		{"priorities become ranks", []dns.SRV{srv("a.test", 80, 30, 1), srv("b.test", 80, 10, 1), srv("c.test", 80, 20, 1), srv("d.test", 80, 10, 1)},
			[]want{{"http://127.0.0.1:80", 1, 2}, {"http://127.0.0.2:80", 1, 0}, {"http://127.0.0.3:80", 1, 1}, {"http://127.0.0.4:80", 1, 0}}, nil},
		{"one address for two targets", []dns.SRV{srv("a.test", 80, 10, 2), srv("a.test", 80, 10, 3), srv("a.test", 80, 20, 7)},
			[]want{{"http://127.0.0.1:80", 5, 0}}, nil},
		{"a target without an address leaves out itself only", []dns.SRV{srv("a.test", 80, 10, 1), srv("ghost.test", 80, 10, 1), srv("b.test", 80, 10, 1)},
			[]want{{"http://127.0.0.1:80", 1, 0}, {"http://127.0.0.2:80", 1, 0}}, []string{"resolving A/AAAA ghost.test. on 127.0.0.1:", "no such host"}},
		{"a backup left out ranks no more", []dns.SRV{srv("ghost.test", 80, 10, 1), srv("b.test", 80, 20, 1)},
			[]want{{"http://127.0.0.2:80", 1, 0}}, []string{"ghost.test"}},
		{"no target resolves", []dns.SRV{srv("ghost.test", 80, 10, 1), srv("phantom.test", 80, 10, 1)},
			nil, []string{"ghost.test", "phantom.test", "no such host"}},
		{"the service is not available", []dns.SRV{srv(".", 0, 0, 0)}, nil, []string{"no targets"}},
		{"no record", nil, nil, []string{"resolving SRV _http._tcp.web.test on 127.0.0.1:", "no such host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records := map[string][]dns.SRV{}
			if tt.records != nil {
				records["_http._tcp.web.test"] = tt.records
			}
			z := serveZone(t, records, hosts)
			r := Resolve(t.Context(), &config.Discovery{SRV: "_http._tcp.web.test", Resolver: config.Addrs{z.addr}, Scheme: "http", Weight: 9})
			var got []want
			for _, b := range r.Backends {
				if b.Source != Source {
					t.Errorf("backend %s has source %q, want %q", b.URL, b.Source, Source)
				}
				got = append(got, want{b.URL, b.Weight, b.Priority})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Resolve() backends = %v, want %v", got, tt.want)
			}
			if (r.Err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("Resolve() err = %v, want one containing %q", r.Err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(r.Err.Error(), w) {
					t.Errorf("Resolve() err = %q, want it to contain %q", r.Err, w)
				}
			}
			if r.Resolver != z.addr {
				t.Errorf("Resolve() resolver = %q, want %q", r.Resolver, z.addr)
			}
		})
	}
}

func TestResolveARecord(t *testing.T) {
	z := serveZone(t, nil, map[string][]string{"web.test": {"127.0.0.2", "127.0.0.1"}})
	r := Resolve(t.Context(), &config.Discovery{DNS: "web.test", Port: 8080, Resolver: config.Addrs{z.addr}, Scheme: "http", Weight: 3})
	want := []config.Backend{{URL: "http://127.0.0.1:8080", Weight: 3, Source: Source}, {URL: "http://127.0.0.2:8080", Weight: 3, Source: Source}}
	if r.Err != nil || !slices.Equal(r.Backends, want) {
		t.Errorf("Resolve(A web.test) = %v, %v; want %v", r.Backends, r.Err, want)
	}
}

func TestResolverListTriedInOrder(t *testing.T) {
	records := map[string][]dns.SRV{"_http._tcp.web.test": {srv("a.test", 80, 10, 1), srv("b.test", 80, 10, 1)}}
	good, other := serveZone(t, records, hosts), serveZone(t, records, hosts)
	refused := refusing(t)
	resolve := func(servers ...string) Result {
		return Resolve(t.Context(), &config.Discovery{SRV: "_http._tcp.web.test", Resolver: servers, Scheme: "http", Weight: 1})
	}

	// The first refuses: the second answers, and the refusal is told, naming the
	// server asked, the same way each time (no ephemeral port in it).
	r := resolve(refused, good.addr)
	if len(r.Backends) != 2 || r.Resolver != good.addr {
		t.Fatalf("Resolve(%s, %s) = %d backends from %q, want 2 from the second", refused, good.addr, len(r.Backends), r.Resolver)
	}
	want := "resolving SRV _http._tcp.web.test on " + refused + ": connection refused"
	if r.Err == nil || r.Err.Error() != want {
		t.Errorf("Resolve(%s, %s) err = %v, want %q (once, though the targets were looked up too)", refused, good.addr, r.Err, want)
	}
	if again := resolve(refused, good.addr); again.Err == nil || again.Err.Error() != r.Err.Error() {
		t.Errorf("the next lookup's err = %v, want the same text %q", again.Err, r.Err)
	}

	// Not found is an answer: the next server is not asked.
	before := other.queries.Load()
	r = Resolve(t.Context(), &config.Discovery{SRV: "_http._tcp.none.test", Resolver: config.Addrs{good.addr, other.addr}, Scheme: "http"})
	if r.Backends != nil || r.Err == nil || !strings.Contains(r.Err.Error(), "on "+good.addr+": no such host") {
		t.Errorf("NXDOMAIN from the first: %v, %v; want no backends and an error naming %s", r.Backends, r.Err, good.addr)
	}
	if n := other.queries.Load() - before; n != 0 {
		t.Errorf("the second server got %d queries after the first said NXDOMAIN, want 0", n)
	}

	// None answers: the error names each server asked.
	refused2 := refusing(t)
	r = resolve(refused, refused2)
	if r.Backends != nil || r.Err == nil || r.Resolver != refused2 {
		t.Fatalf("Resolve(%s, %s) = %v, %v from %q; want an error, asked last %s", refused, refused2, r.Backends, r.Err, r.Resolver, refused2)
	}
	for _, s := range []string{refused, refused2} {
		if !strings.Contains(r.Err.Error(), "on "+s+": connection refused") {
			t.Errorf("Resolve(%s, %s) err = %q, want it to name %s", refused, refused2, r.Err, s)
		}
	}
}

func TestNoAnswerIsNoVerdictOnTheName(t *testing.T) {
	// A server that keeps silent has askTimeout, then the next one is asked; when
	// none answers, the error says nothing of the name (answered is false), so a
	// target looked up so is not left out: the lookup fails instead, and the last
	// known set stays.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	silent, refused := pc.LocalAddr().String(), refusing(t)
	c := newClient([]string{silent, refused})
	start := time.Now()
	err = c.ask(t.Context(), "A/AAAA", "a.test", func(ctx context.Context, r *net.Resolver) error {
		_, err := r.LookupIPAddr(ctx, "a.test")
		return err
	})
	if err == nil || answered(err) {
		t.Fatalf("ask() = %v, answered %v; want no answer", err, answered(err))
	}
	if d := time.Since(start); d > askTimeout+time.Second {
		t.Errorf("ask() took %s, want about %s (the silent server's time, then a refusal)", d, askTimeout)
	}
	for _, s := range []string{silent, refused} {
		if !strings.Contains(err.Error(), "on "+s+": ") {
			t.Errorf("ask() err = %q, want it to name %s", err, s)
		}
	}

	// A target that a server answered for is a verdict, even beside one that did not.
	z := serveZone(t, nil, nil)
	c = newClient([]string{refused, z.addr})
	err = c.ask(t.Context(), "A/AAAA", "ghost.test", func(ctx context.Context, r *net.Resolver) error {
		_, err := r.LookupIPAddr(ctx, "ghost.test")
		return err
	})
	if err == nil || !answered(err) {
		t.Errorf("ask() of NXDOMAIN after a refusal = %v, answered %v; want an answer", err, answered(err))
	}
}

func TestBackendsMergeAndRank(t *testing.T) {
	got := backends([]found{
		{URL: "http://10.0.0.2:80", weight: 1, priority: 5},
		{URL: "http://10.0.0.1:80", weight: 2, priority: 20},
		{URL: "http://10.0.0.1:80", weight: 3, priority: 20},
		{URL: "http://10.0.0.3:80", weight: 4, priority: 5},
		{URL: "http://10.0.0.3:80", weight: 9, priority: 40},
	})
	want := []config.Backend{
		{URL: "http://10.0.0.1:80", Weight: 5, Priority: 1, Source: Source},
		{URL: "http://10.0.0.2:80", Weight: 1, Priority: 0, Source: Source},
		{URL: "http://10.0.0.3:80", Weight: 4, Priority: 0, Source: Source},
	}
	if !slices.Equal(got, want) {
		t.Errorf("backends() = %v, want %v", got, want)
	}
}
