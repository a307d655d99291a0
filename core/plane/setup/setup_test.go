package setup

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-lb/switchyard/core/config"
)

func TestOpenAccessLog(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "config.json")
	for _, tt := range []struct {
		name, path string
		want       string // the file that must exist, "" for none
		off        bool
	}{
		{"off", "", "", true},
		{"standard output", "-", "", false},
		{"relative to the config file", "access.log", filepath.Join(dir, "access.log"), false},
		{"absolute", filepath.Join(dir, "abs.log"), filepath.Join(dir, "abs.log"), false},
	} {
		cfg.LoadBalancer.AccessLog = tt.path
		a, err := OpenAccessLog(cfg, false)
		if err != nil {
			t.Fatalf("%s: OpenAccessLog(%q) = %v", tt.name, tt.path, err)
		}
		if (a == nil) != tt.off {
			t.Errorf("%s: OpenAccessLog(%q) = %v, want off %v", tt.name, tt.path, a, tt.off)
		}
		if tt.want != "" {
			if _, err := os.Stat(tt.want); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
		if s, err := ProxySettings(cfg, a); err != nil || (s.AccessLog == nil) != tt.off {
			t.Errorf("%s: ProxySettings(access %v).AccessLog = %v", tt.name, a, s.AccessLog)
		}
		if err := a.Reopen(); err != nil { // nothing to reopen but a file
			t.Errorf("%s: Reopen = %v", tt.name, err)
		}
		a.Close()
	}
}

func TestAccessLogReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Path, cfg.LoadBalancer.AccessLog = filepath.Join(dir, "config.json"), "access.log"
	a, err := OpenAccessLog(cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	path := filepath.Join(dir, "access.log")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); err != nil {
		t.Fatalf("Reopen = %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("after Reopen: %v, want a new file at %s", err, path)
	}
}
