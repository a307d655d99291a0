// Command fastbackend is the benchmark's backend: it answers every request at once
// with a small JSON body naming itself, so that the proxies in front of it are what
// a benchmark measures.
//
//	go run ./bench/fastbackend [-tls|-h2c] PORT [PORT...]
//
// With -tls it speaks HTTPS, with a self-signed certificate for 127.0.0.1 made at
// start (a proxy in front of it must skip verification). With -h2c it speaks HTTP/2
// without TLS (prior knowledge), through net/http and golang.org/x/net/http2, with
// the same answers.
//
// It is a raw HTTP/1.1 responder on package net rather than a net/http server: it
// reads each request's head and body and answers with bytes prepared in advance, so
// a request costs it no allocation. A net/http server takes about twice the CPU per
// request, and on a small machine the backend shares the cores with the proxy being
// measured. Every answer is
//
//	HTTP/1.1 200 OK
//	Date: <now>
//	Content-Type: application/json
//	Content-Length: <n>
//	Connection: close                  (only when the client asked for it or spoke HTTP/1.0)
//
//	{"server":"127.0.0.1:PORT"}
//
// without the body for HEAD. A request it cannot read (a malformed head, a line
// longer than 4 KiB) gets 400 and the connection is closed.
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// timeFormat is the Date header's format, the IMF-fixdate of RFC 9110 section 5.6.7.
const timeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// badRequest is the answer to a request that cannot be read.
var badRequest = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

// date holds the current Date header line, updated every second by tickDate.
var date atomic.Pointer[[]byte]

func main() {
	ports := os.Args[1:]
	useTLS := len(ports) > 0 && ports[0] == "-tls"
	useH2C := len(ports) > 0 && ports[0] == "-h2c"
	if useTLS || useH2C {
		ports = ports[1:]
	}
	if len(ports) == 0 {
		fmt.Fprintln(os.Stderr, "usage: fastbackend [-tls|-h2c] PORT [PORT...]")
		os.Exit(2)
	}
	var cfg *tls.Config
	if useTLS {
		cert, err := selfSigned()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fastbackend:", err)
			os.Exit(1)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	}
	setDate(time.Now())
	go tickDate()
	for _, port := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fastbackend:", err)
			os.Exit(1)
		}
		if cfg != nil {
			ln = tls.NewListener(ln, cfg)
		}
		a := newAnswer(fmt.Sprintf(`{"server":%q}`, ln.Addr().String()))
		if useH2C {
			go serveH2C(ln, a)
		} else {
			go serve(ln, a)
		}
		fmt.Println("listening on", ln.Addr())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// setDate publishes the Date header line for now.
func setDate(now time.Time) {
	line := []byte("Date: " + now.UTC().Format(timeFormat) + "\r\n")
	date.Store(&line)
}

// tickDate keeps the Date header line current until the process ends.
func tickDate() {
	for now := range time.Tick(time.Second) {
		setDate(now)
	}
}

// answer is a listener's response, cut where the Date line and the optional
// Connection line go.
type answer struct {
	status []byte // the status line
	fields []byte // Content-Type and Content-Length lines
	body   []byte
}

// newAnswer returns the answer carrying body.
func newAnswer(body string) *answer {
	return &answer{
		status: []byte("HTTP/1.1 200 OK\r\n"),
		fields: []byte("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"),
		body:   []byte(body),
	}
}

// write appends the answer to a request to bw.
func (a *answer) write(bw *bufio.Writer, req request) {
	bw.Write(a.status)
	bw.Write(*date.Load())
	bw.Write(a.fields)
	if !req.keepAlive {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if !req.head {
		bw.Write(a.body)
	}
}

// serve answers the connections ln accepts until ln is closed.
func serve(ln net.Listener, a *answer) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of file descriptors, say: wait and try again, as net/http does
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go handle(c, a)
	}
}

// handle answers the requests of one connection in order until the client
// closes it or asks to. Answers to pipelined requests are written together.
func handle(c net.Conn, a *answer) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	for {
		req, err := readRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				bw.Write(badRequest)
				bw.Flush()
			}
			return
		}
		a.write(bw, req)
		if br.Buffered() > 0 && req.keepAlive {
			continue // more requests already here: answer them in the same write
		}
		if bw.Flush() != nil || !req.keepAlive {
			return
		}
	}
}

// request is what the answer depends on of one request.
type request struct {
	head      bool // HEAD: no body in the answer
	keepAlive bool // the connection stays open after the answer
}

// readRequest reads one request, its body included, from br. The error is
// io.EOF when the connection ended before a new request began.
func readRequest(br *bufio.Reader) (request, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return request{}, io.EOF
		}
		return request{}, fmt.Errorf("reading the request line: %w", err)
	}
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	_, proto, ok2 := bytes.Cut(rest, []byte(" "))
	proto = bytes.TrimRight(proto, "\r\n")
	if !ok1 || !ok2 || len(method) == 0 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
		return request{}, fmt.Errorf("malformed request line %q", line)
	}
	req := request{head: string(method) == "HEAD", keepAlive: string(proto) != "HTTP/1.0"}
	var length int64
	var chunked bool
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return request{}, fmt.Errorf("reading a header line: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return request{}, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return request{}, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			req.keepAlive = keepAlive(value, req.keepAlive)
		}
	}
	return req, discardBody(br, length, chunked)
}

// keepAlive reports whether a Connection header of value leaves the connection
// open, where it would be open by default when def (RFC 9112 section 9.3).
func keepAlive(value []byte, def bool) bool {
	for tok := range bytes.SplitSeq(value, []byte(",")) {
		switch tok = bytes.TrimSpace(tok); {
		case bytes.EqualFold(tok, []byte("close")):
			return false
		case bytes.EqualFold(tok, []byte("keep-alive")):
			def = true
		}
	}
	return def
}

// discardBody reads past a request body of length bytes, or a chunked one and
// its trailer section.
func discardBody(br *bufio.Reader, length int64, chunked bool) error {
	if !chunked {
		_, err := br.Discard(int(length))
		return err
	}
	if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
		return fmt.Errorf("reading a chunked body: %w", err)
	}
	for { // the trailer section ends with an empty line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading the trailer section: %w", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

// selfSigned is a certificate for 127.0.0.1, made now, that nothing trusts.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastbackend"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serveH2C answers in HTTP/2 without TLS what serve answers in HTTP/1.1.
func serveH2C(ln net.Listener, a *answer) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(a.body))}
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
	})
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxConcurrentStreams: 1000})}
	_ = srv.Serve(ln)
}
