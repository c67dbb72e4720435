package migration

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket that paces a Stream's flushes. Tokens are
// bytes; the bucket holds at most a tenth of a second of traffic (QEMU's
// BUFFER_DELAY window) and starts empty, so the wire never runs faster than
// the limit for longer than that burst. A flush bigger than the bucket
// borrows: the bucket goes negative and the next flush waits it off.
type rateLimiter struct {
	mu     sync.Mutex
	rate   int64 // bytes per second; 0 = unlimited
	tokens float64
	last   time.Time
	done   <-chan struct{}
}

// SetRateLimit limits the rate at which the Stream writes to the channel,
// in bytes per second; 0 removes the limit. The limit is applied when the
// Stream flushes: a flush waits until the bytes it sends fit the rate, so
// the bytes on the wire over any interval of a second or more stay within
// the limit. A waiting flush ends early, with ErrStreamShutdown, when the
// Stream is shut down or closed. It may be called from any goroutine; the
// new rate applies from the next flush.
func (s *Stream) SetRateLimit(bytesPerSecond int64) {
	if bytesPerSecond < 0 {
		bytesPerSecond = 0
	}
	l := &s.limit
	l.mu.Lock()
	if l.rate != bytesPerSecond {
		l.rate = bytesPerSecond
		l.tokens = 0
		l.last = time.Now()
	}
	l.mu.Unlock()
}

// RateLimit returns the current rate limit in bytes per second; 0 means
// unlimited.
func (s *Stream) RateLimit() int64 {
	s.limit.mu.Lock()
	defer s.limit.mu.Unlock()
	return s.limit.rate
}

// wait takes n bytes from the bucket, sleeping as long as the bucket is in
// debt.
func (l *rateLimiter) wait(n int) error {
	l.mu.Lock()
	if l.rate == 0 {
		l.mu.Unlock()
		return nil
	}
	now := time.Now()
	if l.last.IsZero() {
		l.last = now
	}
	rate := float64(l.rate)
	l.tokens += now.Sub(l.last).Seconds() * rate
	if burst := rate / 10; l.tokens > burst {
		l.tokens = burst
	}
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-l.done:
		return ErrStreamShutdown
	}
}
