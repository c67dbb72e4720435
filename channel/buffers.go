package channel

import "net"

// consume drops the first n bytes from *v, as net.Buffers.WriteTo does.
func consume(v *net.Buffers, n int64) {
	for len(*v) > 0 {
		ln0 := int64(len((*v)[0]))
		if ln0 > n {
			(*v)[0] = (*v)[0][n:]
			return
		}
		n -= ln0
		(*v)[0] = nil
		*v = (*v)[1:]
	}
}

// maxIovecs is IOV_MAX on Linux (and more than on most other systems'
// writev, which then write less, and the loops go round again).
const maxIovecs = 1024
