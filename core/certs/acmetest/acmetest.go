// Package acmetest runs Let's Encrypt's test CA, Pebble, for the tests of ACME
// listeners: built from the module cache (a tool dependency of this module), served
// on loopback, resolving every name to 127.0.0.1 through a DNS server of its own,
// and validating challenges on the ports a test gives. No public CA is contacted.
package acmetest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// pebblePkg is Pebble's main package, a tool dependency in go.mod.
const pebblePkg = "github.com/letsencrypt/pebble/v2/cmd/pebble"

// Options starts a Pebble.
type Options struct {
	// HTTPPort and TLSPort are where Pebble validates http-01 and tls-alpn-01
	// challenges, on 127.0.0.1 (a test's listeners'); 0 picks a port nothing
	// listens on. Validation is real: Pebble connects there.
	HTTPPort, TLSPort int
}

// Pebble is a running Pebble ACME server.
type Pebble struct {
	// Directory is its ACME directory URL, https://127.0.0.1:port/dir.
	Directory string
	// Roots is a PEM file of the root its HTTPS certificate chains to: an ACME
	// client's ca_roots.
	Roots string
	mgmt  string // its management interface, host:port
	cmd   *exec.Cmd
	done  chan struct{}
	mu    sync.Mutex
	log   bytes.Buffer // its output
}

// Start builds and runs a Pebble until the test ends. It skips the test, saying
// why, only when Pebble cannot be built.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	dir := t.TempDir()
	bin := build(t, dir)
	if o.HTTPPort == 0 {
		o.HTTPPort = FreePort(t)
	}
	if o.TLSPort == 0 {
		o.TLSPort = FreePort(t)
	}
	certFile, keyFile, roots := serverCert(t, dir)
	addr, mgmt := "127.0.0.1:"+strconv.Itoa(FreePort(t)), "127.0.0.1:"+strconv.Itoa(FreePort(t))
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": addr, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": o.HTTPPort, "tlsPort": o.TLSPort,
		"keyAlgorithm": "ecdsa",
		// No Retry-After: clients poll every 250 ms instead of every few seconds.
		"retryAfter": map[string]any{"authz": 0, "order": 0},
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Pebble{Directory: "https://" + addr + "/dir", Roots: roots, mgmt: mgmt, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "-config", cfgFile, "-dnsserver", startDNS(t))
	p.cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once, not after up to 5 s
		"PEBBLE_WFE_NONCEREJECT=0", // no badNonce to retry
		"PEBBLE_AUTHZREUSE=0",      // each order validates anew
		"PEBBLE_VA_ALWAYS_VALID=0") // real validation, always
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	ready := make(chan struct{})
	go p.read(out, ready)
	t.Cleanup(p.Stop)
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("pebble exited: %s", p.Log())
	case <-time.After(30 * time.Second):
		t.Fatalf("pebble did not start within 30s: %s", p.Log())
	}
	waitDial(t, addr)
	return p
}

// build compiles Pebble into dir, or skips the test saying why it cannot.
func build(t testing.TB, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, "pebble")
	cmd := exec.Command(goBin, "build", "-o", bin, pebblePkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build Pebble (%s), the test ACME CA: %v\n%s", pebblePkg, err, out)
	}
	return bin
}

// read copies Pebble's output into p.log, closing ready when it listens.
func (p *Pebble) read(r io.Reader, ready chan struct{}) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	once := sync.Once{}
	for sc.Scan() {
		p.mu.Lock()
		p.log.Write(sc.Bytes())
		p.log.WriteByte('\n')
		p.mu.Unlock()
		if strings.Contains(sc.Text(), "ACME directory available at") {
			once.Do(func() { close(ready) })
		}
	}
	_ = p.cmd.Wait()
}

// Log is what Pebble wrote so far.
func (p *Pebble) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Orders counts the orders Pebble took: one per certificate obtained.
func (p *Pebble) Orders() int { return strings.Count(p.Log(), "Added order") }

// Stop ends Pebble; the test's end does too.
func (p *Pebble) Stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// IssuerRoots are the roots of the certificates Pebble issues (generated at its
// start), from its management interface.
func (p *Pebble) IssuerRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test CA's own management interface on loopback
	resp, err := c.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("pebble root: %s", data)
	}
	return pool
}

// FreePort is a loopback port nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitDial waits until addr accepts connections.
func waitDial(t testing.TB, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble does not accept on %s: %v", addr, err)
		}
	}
}

// serverCert writes Pebble's HTTPS certificate, for 127.0.0.1 and localhost, with
// its key and the root it chains to, as PEM files in dir.
func serverCert(t testing.TB, dir string) (certFile, keyFile, rootFile string) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchyard test Pebble root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	rootCert, _ := x509.ParseCertificate(rootDER)
	der, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile, rootFile = filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble.key"), filepath.Join(dir, "pebble-root.pem")
	for f, b := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: kder},
		rootFile: {Type: "CERTIFICATE", Bytes: rootDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, rootFile
}

// startDNS serves DNS over TCP (as Pebble asks) on a free loopback port until the
// test ends: every name has the address 127.0.0.1, and no IPv6 one.
func startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}
