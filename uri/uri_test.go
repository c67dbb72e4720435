package uri

import (
	"net"
	"testing"
)

func TestHostPort(t *testing.T) {
	for _, tt := range []struct{ host, port, want string }{
		{"", "4444", ":4444"},
		{"example.com", "http", "example.com:http"},
		{"10.0.0.1", "0", "10.0.0.1:0"},
		{"::1", "4444", "[::1]:4444"},
		{"fe80::1%eth0", "1", "[fe80::1%eth0]:1"},
	} {
		i := Inet{Host: tt.host, Port: tt.port}
		if got := i.HostPort(); got != tt.want {
			t.Errorf("HostPort(%q, %q) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
		if want := net.JoinHostPort(tt.host, tt.port); i.HostPort() != want {
			t.Errorf("HostPort(%q, %q) = %q, net.JoinHostPort gives %q", tt.host, tt.port, i.HostPort(), want)
		}
	}
}

func TestPortRange(t *testing.T) {
	for _, tt := range []struct {
		in          Inet
		first, last uint16
		ok          bool
	}{
		{Inet{Port: "4444"}, 4444, 4444, true},
		{Inet{Port: "4444", To: 4450}, 4444, 4450, true},
		{Inet{Port: "0"}, 0, 0, true},
		{Inet{Port: "http"}, 0, 0, false},
	} {
		first, last, ok := tt.in.PortRange()
		if first != tt.first || last != tt.last || ok != tt.ok {
			t.Errorf("%+v.PortRange() = %d, %d, %v; want %d, %d, %v", tt.in, first, last, ok, tt.first, tt.last, tt.ok)
		}
	}
}

func TestAddressHelpers(t *testing.T) {
	for _, tt := range []struct {
		in           string
		reachesPeer  bool
		tlsHostname  string
		needsHostame bool
	}{
		{"tcp:h:1", true, "h", false},
		{"tcp:h:1,tls-creds=c", true, "h", false},
		{"tcp::1,tls-creds=c", true, "", true},
		{"tcp:h:1,tls-creds=c,tls-hostname=other", true, "other", false},
		{"unix:/s", true, "", false},
		{"unix:/s,tls-creds=c", true, "", true},
		{"unix:/s,tls-creds=c,tls-hostname=h", true, "h", false},
		{"vsock:2:1,tls-creds=c", true, "", true},
		{"exec:cat,tls-creds=c", true, "", true},
		{"fd:3,tls-creds=c", true, "", true},
		{"file:/f", false, "", false},
	} {
		a, err := Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.ReachesPeer(); got != tt.reachesPeer {
			t.Errorf("Parse(%q).ReachesPeer() = %v", tt.in, got)
		}
		if got := a.TLSHostname(); got != tt.tlsHostname {
			t.Errorf("Parse(%q).TLSHostname() = %q, want %q", tt.in, got, tt.tlsHostname)
		}
		if got := a.NeedsTLSHostname(); got != tt.needsHostame {
			t.Errorf("Parse(%q).NeedsTLSHostname() = %v", tt.in, got)
		}
	}
	var zero Address
	if zero.ReachesPeer() || zero.String() != "" || zero.NeedsTLSHostname() {
		t.Errorf("zero Address: ReachesPeer %v, String %q, NeedsTLSHostname %v", zero.ReachesPeer(), zero.String(), zero.NeedsTLSHostname())
	}
}

// TestAddressComparable checks the doc's promise that == compares Addresses.
func TestAddressComparable(t *testing.T) {
	a, _ := Parse("tcp:h:1,ipv4")
	b, _ := Parse("tcp:h:01,ipv4=yes")
	if *a != *b {
		t.Errorf("%+v != %+v", *a, *b)
	}
}

func TestFamilies(t *testing.T) {
	for _, tt := range []struct {
		ipv4, ipv6 Switch
		v4, v6     bool
	}{
		{Unset, Unset, true, true},
		{On, On, true, true},
		{On, Unset, true, false},
		{Unset, Off, true, false},
		{Unset, On, false, true},
		{Off, Unset, false, true},
		{On, Off, true, false},
		{Off, On, false, true},
		{Off, Off, false, false},
	} {
		i := Inet{IPv4: tt.ipv4, IPv6: tt.ipv6}
		if v4, v6 := i.Families(); v4 != tt.v4 || v6 != tt.v6 {
			t.Errorf("ipv4=%v ipv6=%v: Families() = %v, %v; want %v, %v", tt.ipv4, tt.ipv6, v4, v6, tt.v4, tt.v6)
		}
	}
}
