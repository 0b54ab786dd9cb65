package sim

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// A device past the first DevicesPerSource of a loopback server connects from the next
// loopback address, so that 50,000 or 100,000 devices do not run out of ephemeral ports.
func TestDevicesSpreadOverLoopbackSources(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	server := "https://" + ln.Addr().String()
	if !loopbackServer(server) || loopbackServer("https://rampart.example:8443") || loopbackServer("https://[::1]:8443") {
		t.Fatal("loopbackServer: want true for 127.0.0.1 only")
	}
	tr := &http.Transport{}
	if deviceTransport(tr, true, DevicesPerSource-1) != tr || deviceTransport(tr, false, 3*DevicesPerSource) != tr {
		t.Fatal("the first block of devices, and every device of a server elsewhere, keep the template")
	}
	for _, c := range []struct {
		device int
		want   string
	}{{DevicesPerSource, "127.0.0.2"}, {5*DevicesPerSource - 1, "127.0.0.5"}, {9*DevicesPerSource + 7, "127.0.0.10"}} {
		conn, err := deviceTransport(tr, true, c.device).DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := peer.RemoteAddr().(*net.TCPAddr).IP.String(); got != c.want {
			t.Errorf("device %d connects from %s, want %s", c.device, got, c.want)
		}
		conn.Close()
		peer.Close()
	}
}
