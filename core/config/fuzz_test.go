package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the parser and validator: they may refuse, never
// panic. The seed corpus is testdata/fuzz/FuzzParse plus config.json.
func FuzzParse(f *testing.F) {
	if seed, err := os.ReadFile(filepath.Join("..", "..", "config.json")); err == nil {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "config.json")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			return
		}
		_ = c.Validate([]string{"leastconn", "weighted"})
		_ = Diff(c, Default())
	})
}
