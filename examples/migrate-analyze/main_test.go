package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemig/livemig/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// realStream returns the QEMU 7.2 stream kept in vmstream's testdata.
func realStream(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("../../internal/vmstream/testdata/qemu-7.2-16M-zero.bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInputs: the four ways to name the input (a path, a file: URI with
// an offset, QEMU's JSON file channel, - for stdin) and the errors of
// each. The QEMU files
// themselves are tested end to end in examples/interop.
func TestInputs(t *testing.T) {
	stream := realStream(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.state")
	if err := os.WriteFile(plain, stream, 0o600); err != nil {
		t.Fatal(err)
	}
	shifted := filepath.Join(dir, "shifted.state")
	if err := os.WriteFile(shifted, append(make([]byte, 0x1000), stream...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		stdin     []byte
		code      int
		start     int64
		errSubstr string
	}{
		{"path", []string{"--json", plain}, nil, 0, 0, ""},
		{"file URI", []string{"--json", "file:" + plain}, nil, 0, 0, ""},
		{"file URI with hex offset", []string{"--json", "file:" + shifted + ",offset=0x1000"}, nil, 0, 0x1000, ""},
		{"file URI with size offset", []string{"--json", "file:" + shifted + ",offset=4k"}, nil, 0, 0x1000, ""},
		{"stdin", []string{"--json", "-"}, stream, 0, 0, ""},
		{"shifted file read from 0", []string{"--json", shifted}, nil, 1, 0, "offset 0 (0x0): magic"},
		{"offset past the end", []string{"--json", "file:" + plain + ",offset=1G"}, nil, 1, 1 << 30, "outside the file"},
		{"bad URI", []string{"file:" + plain + ",offset=x"}, nil, 1, 0, `invalid offset "x"`},
		{"QEMU's JSON file channel", []string{"--json", `{"channel-type":"main","addr":{"transport":"file","filename":"` + shifted + `","offset":4096}}`}, nil, 0, 0x1000, ""},
		{"URI of another transport", []string{"unix:/tmp/x"}, nil, 1, 0, "names a unix endpoint, and no such file exists"},
		{"JSON of another transport", []string{`{"channel-type":"main","addr":{"transport":"socket","type":"fd","str":"3"}}`}, nil, 1, 0, "names a fd endpoint: migrate-analyze reads files"},
		{"offset into a character device", []string{"file:/dev/null,offset=16"}, nil, 1, 0, "not a regular file"},
		{"missing file", []string{filepath.Join(dir, "none")}, nil, 1, 0, "no such file"},
		{"two files", []string{plain, plain}, nil, 1, 0, "exactly one FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, bytes.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.errSubstr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.errSubstr)
			}
			if tc.args[0] != "--json" || stdout.Len() == 0 && tc.code != 0 {
				return
			}
			var out struct {
				Start int64
				EOF   bool
			}
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("output %q: %v", stdout.String(), err)
			}
			if out.Start != tc.start || out.EOF != (tc.code == 0) {
				t.Fatalf("start %d, EOF %v; want start %d", out.Start, out.EOF, tc.start)
			}
		})
	}
}
