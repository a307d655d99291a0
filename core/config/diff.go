package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Diff lists the dotted keys whose values differ between a and b ("threadpool.max_workers",
// "servers.backends", "pools.api.retries", "routes"), sorted. Lists count as one value;
// an object one side has and the other has not (a pool added or removed) is one key.
func Diff(a, b *Config) []string {
	var out []string
	diffValues("", toTree(a), toTree(b), &out)
	slices.Sort(out)
	return out
}

// toTree turns c into nested maps, as config.json would hold it.
func toTree(c *Config) map[string]any {
	data, err := json.Marshal(c)
	if err != nil { // unreachable: Config holds only plain values
		panic(fmt.Sprintf("config: marshalling: %v", err))
	}
	var tree map[string]any
	_ = json.Unmarshal(data, &tree)
	return tree
}

func diffValues(prefix string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, prefix)
		}
		return
	}
	for k, av := range am {
		diffValues(join(prefix, k), av, bm[k], out)
	}
	for k, bv := range bm {
		if _, ok := am[k]; !ok {
			diffValues(join(prefix, k), nil, bv, out)
		}
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// Value returns the value at a dotted key of c as config.json would show it, if it is
// a scalar (not an object or a list).
func (c *Config) Value(key string) (string, bool) {
	var v any = toTree(c)
	for part := range strings.SplitSeq(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[part]
	}
	switch v.(type) {
	case map[string]any, []any, nil: // nil: not in c (a pool removed) or null
		return "", false
	}
	return fmt.Sprint(v), true
}
