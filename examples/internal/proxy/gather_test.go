package proxy

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/livemig/livemig/channel"
	"github.com/livemig/livemig/crypto"
	"github.com/livemig/livemig/internal/testpki"
	"github.com/livemig/livemig/internal/testwait"
	"github.com/livemig/livemig/migration"
	"github.com/livemig/livemig/uri"
)

// TestRecordGatherer sends 4 MiB over a real TLS connection on loopback
// and reads it with a recordGatherer: every byte arrives in order, some
// reads return more than one record, and the end of the stream comes
// after the last byte.
func TestRecordGatherer(t *testing.T) {
	ctx := testwait.Context(t)
	pki := t.TempDir()
	if _, err := testpki.Write(pki, nil); err != nil {
		t.Fatal(err)
	}
	reg := crypto.NewRegistry()
	for _, spec := range []string{
		"tls-creds-x509,id=srv,dir=" + filepath.Join(pki, "server") + ",endpoint=server",
		"tls-creds-x509,id=cli,dir=" + filepath.Join(pki, "client") + ",endpoint=client",
	} {
		if err := reg.AddObject(spec); err != nil {
			t.Fatal(err)
		}
	}
	laddr, err := uri.Parse("tcp:127.0.0.1:0,tls-creds=srv")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := migration.Listen(ctx, laddr, &migration.Config{Registry: reg, Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	daddr, err := uri.Parse("tcp:127.0.0.1:" + ln.Addr().Inet.Port + ",tls-creds=cli,tls-hostname=localhost")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>12)
	}
	sender := testwait.Go(func() error {
		st, err := migration.Dial(ctx, daddr, &migration.Config{Registry: reg, Raw: true})
		if err != nil {
			return err
		}
		for off := 0; off < len(data) && err == nil; off += 256 << 10 {
			_, err = st.Channel().Write(data[off : off+256<<10])
		}
		return errors.Join(err, st.Close())
	})
	st, err := ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := newChannelReader(st.Channel())
	if _, ok := r.(*recordGatherer); !ok {
		t.Fatalf("reader for %T is %T, want a recordGatherer", st.Channel(), r)
	}
	var got bytes.Buffer
	buf := make([]byte, 256<<10)
	largest := 0
	for first := true; ; first = false {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		largest = max(largest, n)
		if first {
			// Wait until the sender is blocked on full socket buffers
			// (or done): records are then waiting when the next Read
			// comes.
			sender.Blocked(t)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
	}
	if err := sender.Result(t, "sending"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d sent in order", got.Len(), len(data))
	}
	if largest <= tlsRecord {
		t.Fatalf("the largest read was %d bytes: no records were gathered", largest)
	}
	if _, ok := st.Channel().(*channel.TLS); !ok {
		t.Fatalf("channel %T", st.Channel())
	}
}
