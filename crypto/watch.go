package crypto

import (
	"context"
	"os"
	"time"
)

// stamp is what Watch compares to notice a changed file.
type stamp struct {
	path    string
	exists  bool
	size    int64
	modTime time.Time
	dev     uint64 // device and inode: a file replaced by rename is a
	ino     uint64 // change even with the same size and time
}

type stamps []stamp

// add records the state of path as seen through f (nil: absent or
// unreadable, recorded by name).
func (s *stamps) add(path string, f *os.File) {
	st := stamp{path: path}
	var fi os.FileInfo
	var err error
	if f != nil {
		fi, err = f.Stat()
	} else {
		fi, err = os.Stat(path)
	}
	if err == nil {
		st.exists, st.size, st.modTime = true, fi.Size(), fi.ModTime()
		st.dev, st.ino = fileID(fi)
	}
	*s = append(*s, st)
}

func (s stamps) changed() bool {
	for _, st := range s {
		fi, err := os.Stat(st.path)
		if (err == nil) != st.exists {
			return true
		}
		if err == nil && (fi.Size() != st.size || !fi.ModTime().Equal(st.modTime)) {
			return true
		}
		if err == nil {
			if dev, ino := fileID(fi); dev != st.dev || ino != st.ino {
				return true
			}
		}
	}
	return false
}

// Watch polls the files of every credentials object in the registry every
// interval (0 means one second) and reloads an object when one of its
// files changed size, modification time, presence or (on Unix) inode, so
// that a file replaced by rename is noticed even when the size and the
// coarse timestamp are unchanged. A failed reload keeps
// the old material; it is reported through r.Logf and retried only after
// the files change again. Watch blocks until ctx ends and returns
// ctx.Err(). It adds no dependency: it polls with os.Stat.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failed := map[string]stamps{} // id -> stamps seen at a failed reload
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		for _, c := range r.allCreds() {
			if !c.changed() {
				continue
			}
			cur := c.currentFiles()
			if prev, ok := failed[c.id]; ok && !prev.changed() {
				continue
			}
			if err := c.Reload(); err != nil {
				failed[c.id] = cur
				r.logf("crypto: watch: reloading %s failed, keeping the old credentials: %v", c.id, err)
				continue
			}
			delete(failed, c.id)
			r.logf("crypto: watch: reloaded %s", c.id)
		}
	}
}

// currentFiles stamps the files of the current material as they are now.
func (c *Creds) currentFiles() stamps {
	var old stamps
	switch c.kind {
	case X509:
		old = c.mat.Load().stamps
	case PSK:
		old = c.keys.Load().stamps
	}
	var now stamps
	for _, st := range old {
		now.add(st.path, nil)
	}
	return now
}
