package portmap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// maxRouteTable bounds what defaultGateway reads of the route table.
const maxRouteTable = 1 << 20

// parseRouteTable returns the gateway of the first default route (destination
// and mask 0, RTF_GATEWAY set) in the text of Linux's /proc/net/route.
// It never panics; lines it cannot read are skipped.
func parseRouteTable(b []byte) (netip.Addr, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 512), 4096)
	first := true
	for sc.Scan() {
		if first { // the header: Iface Destination Gateway Flags ...
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		const rtfUp, rtfGateway = 0x1, 0x2
		var flags uint64
		if _, err := fmt.Sscanf(f[3], "%x", &flags); err != nil || flags&(rtfUp|rtfGateway) != rtfUp|rtfGateway {
			continue
		}
		if f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		raw, err := hex.DecodeString(f[2])
		if err != nil || len(raw) != 4 {
			continue
		}
		// The kernel prints the address as a native-endian 32-bit number.
		var ip [4]byte
		binary.LittleEndian.PutUint32(ip[:], binary.BigEndian.Uint32(raw))
		if gw := netip.AddrFrom4(ip); !gw.IsUnspecified() {
			return gw, nil
		}
	}
	return netip.Addr{}, ErrNoGateway
}

// cgnat is RFC 6598's shared address space (carrier-grade NAT), where some
// home routers sit.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// homeRouter reports whether a default gateway found on its own may be a
// home router worth asking: a private (RFC 1918) or shared (RFC 6598)
// address. A host whose default gateway is public is not behind a home NAT,
// and a Mapper then sends nothing (Config.Gateway overrides this).
func homeRouter(gw netip.Addr) bool {
	return gw.IsPrivate() || cgnat.Contains(gw)
}
