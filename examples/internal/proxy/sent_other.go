//go:build !linux

package proxy

import "github.com/livemig/livemig/channel"

// peerSent reports true always where the kernel's count of received bytes
// is not read: connections are handed on in strict accept order.
func peerSent(channel.Channel) func() bool { return func() bool { return true } }
