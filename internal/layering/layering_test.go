package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/livemig/livemig"

// forbidden lists, for each layer, the layers it must not import (directly
// or through anything else). Below a layer in DESIGN.md's drawing means
// forbidden.
var forbidden = map[string][]string{
	"uri":       {"crypto", "channel", "migration", "examples"},
	"crypto":    {"uri", "channel", "migration", "examples"},
	"channel":   {"uri", "migration", "examples"},
	"migration": {"examples"},
}

type pkg struct {
	ImportPath string
	Deps       []string
}

// TestLayering reads `go list -deps` for every package of the module and
// fails on any import that crosses the layering downwards.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		layer := layerOf(p.ImportPath)
		bad, ok := forbidden[layer]
		if !ok {
			continue
		}
		seen++
		for _, dep := range p.Deps {
			for _, b := range bad {
				if layerOf(dep) == b {
					t.Errorf("%s (layer %s) imports %s (layer %s): DESIGN.md forbids it", p.ImportPath, layer, dep, b)
				}
			}
		}
	}
	if seen < len(forbidden) {
		t.Fatalf("checked %d packages, want at least one per layer (%d)", seen, len(forbidden))
	}
}

// TestLayerOf pins the mapping from import paths to layers.
func TestLayerOf(t *testing.T) {
	for in, want := range map[string]string{
		module + "/uri":                     "uri",
		module + "/channel/channeltest":     "channel",
		module + "/examples/migrate-source": "examples",
		module + "/internal/leakcheck":      "",
		module + "/crypto/cryptotest":       "crypto",
		"crypto/tls":                        "",
		module + "/crypto":                  "crypto",
	} {
		if got := layerOf(in); got != want {
			t.Errorf("layerOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// layerOf returns the top-level directory of a package of this module, or ""
// for packages outside it and for internal/ (shared by every layer).
func layerOf(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rest, "/")
	if top == "internal" {
		return ""
	}
	return top
}
