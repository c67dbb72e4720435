package channel

import "strconv"

// VsockAddr is an AF_VSOCK address: a context ID and a port. CID 1
// (VMADDR_CID_LOCAL) is the local host's loopback, 2 the host, and 3 and
// up guests.
type VsockAddr struct {
	CID  uint32
	Port uint32
}

// Network returns "vsock".
func (a *VsockAddr) Network() string { return "vsock" }

// String returns "cid:port".
func (a *VsockAddr) String() string {
	if a == nil {
		return ""
	}
	return strconv.FormatUint(uint64(a.CID), 10) + ":" + strconv.FormatUint(uint64(a.Port), 10)
}
