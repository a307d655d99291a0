package certs

import (
	"context"
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

func TestSNIChoosesExactThenWildcardThenFirst(t *testing.T) {
	ca, dir := exchangetest.NewCA(t), t.TempDir()
	c1, k1 := ca.Issue(t, dir, "lb.example.com")
	c2, k2 := ca.Issue(t, dir, "*.example.com")
	c3, k3 := ca.Issue(t, dir, "api.example.com")
	s, err := Load([]Pair{{c1, k1}, {c2, k2}, {c3, k3}})
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{
		"api.example.com": "api.example.com", "API.Example.com.": "api.example.com",
		"www.example.com": "*.example.com", "a.b.example.com": "lb.example.com", // a wildcard covers one label
		"other.test": "lb.example.com", "": "lb.example.com",
	} {
		c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil || c.Leaf.Subject.CommonName != want {
			t.Errorf("SNI %q: %v, %v; want %s", sni, c.Leaf.Subject.CommonName, err, want)
		}
	}
	if infos := s.Infos(); len(infos) != 3 || infos[1].Names[0] != "*.example.com" || infos[0].Issuer != "switchyard test CA" {
		t.Errorf("infos = %+v", infos)
	}
}

func TestLoadRefusesABrokenPair(t *testing.T) {
	ca, dir := exchangetest.NewCA(t), t.TempDir()
	c1, _ := ca.Issue(t, dir, "a.test")
	_, k2 := ca.Issue(t, dir, "b.test")
	if _, err := Load([]Pair{{c1, k2}}); err == nil {
		t.Fatal("a certificate with another's key loaded")
	}
}

// A pair rewritten on disk serves within about a second; a broken rewrite is
// reported and the previous version keeps serving.
func TestReloadOnChangeKeepsTheOldOnError(t *testing.T) {
	ca, dir := exchangetest.NewCA(t), t.TempDir()
	c, k := ca.Issue(t, dir, "a.test")
	s, err := Load([]Pair{{c, k}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reports := make(chan error, 10)
	if err := s.Watch(ctx, func(err error) { reports <- err }); err != nil {
		t.Fatal(err)
	}
	first := s.Infos()[0]
	// A new certificate for the same name, written over the old files.
	dir2 := t.TempDir()
	nc, nk := ca.Issue(t, dir2, "a.test", "b.test")
	copyFile(t, nk, k)
	copyFile(t, nc, c)
	select {
	case err := <-reports:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5 s of the change")
	}
	if got := s.Infos()[0].Names; len(got) != 2 {
		t.Fatalf("after the change the store serves %v, want a.test and b.test (was %v)", got, first.Names)
	}
	// A broken file: reported, and the last good version serves on.
	if err := os.WriteFile(c, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reports:
		if err == nil {
			t.Fatal("a broken certificate file reloaded without error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5 s of the broken write")
	}
	if got := s.Infos()[0].Names; len(got) != 2 {
		t.Errorf("after a broken write the store serves %v, want the last good certificate", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
