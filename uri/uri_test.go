package uri

import (
	"fmt"
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

// otherFields returns what a holds outside the fields of its own
// transport (and outside TLS, on transports that take TLS options): the
// zero Address when a keeps to its own fields.
func otherFields(a Address) Address {
	switch a.Transport {
	case TCP:
		a.Inet = Inet{}
	case Unix:
		a.Unix = UnixAddr{}
	case Vsock:
		a.Vsock = VsockAddr{}
	case Exec:
		a.Command, a.Args = "", Argv{}
	case FD:
		a.FD = ""
	case File:
		a.File = FileAddr{}
	}
	if a.Transport != File {
		a.TLS = TLS{}
	}
	a.Transport = ""
	return a
}

// TestTransportFieldsApart checks that Parse sets only the fields of the
// Address's transport, so that, for example, the port of a vsock address
// is never found in a.Inet.Port, nor a tcp port in a.Vsock.Port.
func TestTransportFieldsApart(t *testing.T) {
	for _, tt := range parseTests {
		a, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if o := otherFields(a); !o.IsZero() {
			t.Errorf("Parse(%q) sets fields of other transports: %+v", tt.in, o)
		}
	}
	v, _ := Parse("vsock:3:1234")
	if v.Inet.Port != "" || v.Vsock.Port != 1234 {
		t.Errorf("vsock:3:1234: Inet.Port %q, Vsock.Port %d; want \"\" and 1234", v.Inet.Port, v.Vsock.Port)
	}
	c, _ := Parse("tcp:h:4444")
	if c.Vsock.Port != 0 || c.Inet.Port != "4444" {
		t.Errorf("tcp:h:4444: Vsock.Port %d, Inet.Port %q; want 0 and \"4444\"", c.Vsock.Port, c.Inet.Port)
	}
	f, _ := Parse("file:/f,offset=1k")
	if f.Unix.Path != "" || f.File.Path != "/f" {
		t.Errorf("file:/f: Unix.Path %q, File.Path %q; want \"\" and \"/f\"", f.Unix.Path, f.File.Path)
	}
}

func TestAddressZero(t *testing.T) {
	var zero Address
	if !zero.IsZero() || zero.String() != "" {
		t.Errorf("zero Address: IsZero %v, String %q", zero.IsZero(), zero.String())
	}
	for _, tt := range parseTests {
		a, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if a.IsZero() {
			t.Errorf("Parse(%q).IsZero() = true", tt.in)
		}
	}
	if (Address{Transport: TCP}).IsZero() {
		t.Error("Address{Transport: TCP}.IsZero() = true")
	}
}

// TestAddressComparable checks the doc's promise that == compares
// Addresses, so that they also work as map keys.
func TestAddressComparable(t *testing.T) {
	a, _ := Parse("tcp:h:1,ipv4")
	b, _ := Parse("tcp:h:01,ipv4=yes")
	if a != b {
		t.Errorf("%+v != %+v", a, b)
	}
	c, _ := Parse("tcp:h:1,ipv4,tls-creds=c")
	if a == c {
		t.Errorf("%+v == %+v", a, c)
	}
	seen := map[Address]bool{a: true}
	if !seen[b] || seen[c] {
		t.Errorf("map lookup: %v %v", seen[b], seen[c])
	}
}

// TestValueMethods checks that the methods work on Address and Inet
// values, as fmt and callers holding a value need, not only on pointers.
func TestValueMethods(t *testing.T) {
	a, _ := Parse("tcp:[::1]:4444,to=4450")
	if got := fmt.Sprint(a); got != "tcp:[::1]:4444,to=4450" {
		t.Errorf("fmt.Sprint(a) = %q", got)
	}
	if got := fmt.Sprintf("%s|%v", a, a); got != "tcp:[::1]:4444,to=4450|tcp:[::1]:4444,to=4450" {
		t.Errorf("fmt.Sprintf(%%s|%%v) = %q", got)
	}
	in := a.Inet
	if in.HostPort() != "[::1]:4444" {
		t.Errorf("HostPort() = %q", in.HostPort())
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
