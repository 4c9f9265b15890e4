package sync

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/skein-dev/skein/engine/net"
)

// Every message a sync Client or Server sends starts with a tag byte that
// says which layer it belongs to.
const (
	tagUser    byte = 0x00 // an application message sent to one host
	tagControl byte = 0x01 // an engine control message (below)
	tagGroup   byte = 0x02 // an application message sent to a group: group(4) follows
)

// controlChannel is the unreliable channel the engine keeps for itself (clock
// sync); Send refuses it.
const controlChannel uint8 = 255

// Control operations.
const (
	opPeerAdd     byte = 1 // peer(4) keys(64) cipher(1) addrs: count(1) × (ip16, port2)
	opPeerRemove  byte = 2 // peer(4)
	opMemberJoin  byte = 3 // group(4) member(4) count(2) customLen(2) custom userLen(1) user
	opMemberLeave byte = 4 // group(4) member(4) count(2)
	opHostChange  byte = 5 // group(4) host(4)
	opTimeReq     byte = 6 // client clock(8)
	opTimeResp    byte = 7 // client clock(8) server clock(8)
	opCandidates  byte = 8 // addrs: count(1) × (ip16, port2): the client's LAN addresses and its port-mapped public address
	// opPeerCandidates: peer(4) addrs: a peer's candidates changed (it
	// got a port mapping, or lost it); sent by the server to the
	// client's peers.
	opPeerCandidates byte = 9
	opNATReport      byte = 10 // nat(4): the client's NAT type (client → server)
	opPeerNAT        byte = 11 // peer(4) nat(4): a peer's NAT type (server → client)
	opMemberAway     byte = 12 // group(4) member(4): the member's link to the server is suspended
	opMemberBack     byte = 13 // group(4) member(4): it resumed
	opLast                = opMemberBack
)

// MaxCustom bounds a group's custom field.
const MaxCustom = 4096

// maxAddrs bounds the candidate addresses in a peer announcement.
const maxAddrs = 8

var errBadControl = errors.New("skein/sync: malformed control message")

// control is one decoded control message. Fields unused by Op are zero.
type control struct {
	Op     byte
	Peer   net.HostID // PeerAdd, PeerRemove, PeerCandidates
	Keys   net.Keys   // PeerAdd: the keys as the receiver uses them
	Addrs  []netip.AddrPort
	Group  net.HostID // MemberJoin, MemberLeave, HostChange, MemberAway, MemberBack
	Member net.HostID // MemberJoin, MemberLeave, MemberAway, MemberBack
	Host   net.HostID // HostChange
	Count  uint16
	Custom []byte
	User   string // MemberJoin: the member's user ID, if the server shares it
	T1, T2 int64
	NAT    net.NATReport // NATReport, PeerNAT: type, mapping, filtering, flags (natSize)
}

// natSize is the size of a NAT report in a control message: type(1)
// mapping(1) filtering(1) flags(1): bit 0 hairpin, bits 1-2 port mapping.
const natSize = 4

func appendNAT(b []byte, r net.NATReport) []byte {
	flags := byte(r.PortMapping) << 1
	if r.Hairpin {
		flags |= 1
	}
	return append(b, byte(r.Type), byte(r.Mapping), byte(r.Filtering), flags)
}

// nat reads a NAT report; out-of-range values mark the reader bad.
func (r *reader) nat() net.NATReport {
	b := r.take(natSize)
	rep := net.NATReport{Type: net.NATType(b[0]), Mapping: net.NATBehavior(b[1]), Filtering: net.NATBehavior(b[2]), Hairpin: b[3]&1 != 0, PortMapping: net.PortMapping(b[3] >> 1)}
	if rep.Type >= net.NumNATTypes || b[1] > byte(net.AddressPortDependent) || b[2] > byte(net.AddressPortDependent) || b[3] > 5 {
		r.bad = true
	}
	return rep
}

func appendID(b []byte, id net.HostID) []byte { return binary.LittleEndian.AppendUint32(b, uint32(id)) }

// appendControl encodes c, tag included.
func appendControl(b []byte, c control) []byte {
	b = append(b, tagControl, c.Op)
	switch c.Op {
	case opPeerAdd:
		b = appendID(b, c.Peer)
		b = append(append(b, c.Keys.Send[:]...), c.Keys.Recv[:]...)
		b = append(b, byte(c.Keys.Cipher))
		b = appendAddrs(b, c.Addrs)
	case opCandidates:
		b = appendAddrs(b, c.Addrs)
	case opPeerCandidates:
		b = appendAddrs(appendID(b, c.Peer), c.Addrs)
	case opPeerRemove:
		b = appendID(b, c.Peer)
	case opMemberJoin:
		b = appendID(appendID(b, c.Group), c.Member)
		b = binary.LittleEndian.AppendUint16(b, c.Count)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(c.Custom)))
		b = append(b, c.Custom...)
		b = append(b, byte(len(c.User)))
		b = append(b, c.User...)
	case opMemberLeave:
		b = appendID(appendID(b, c.Group), c.Member)
		b = binary.LittleEndian.AppendUint16(b, c.Count)
	case opHostChange:
		b = appendID(appendID(b, c.Group), c.Host)
	case opMemberAway, opMemberBack:
		b = appendID(appendID(b, c.Group), c.Member)
	case opTimeReq:
		b = binary.LittleEndian.AppendUint64(b, uint64(c.T1))
	case opTimeResp:
		b = binary.LittleEndian.AppendUint64(b, uint64(c.T1))
		b = binary.LittleEndian.AppendUint64(b, uint64(c.T2))
	case opNATReport:
		b = appendNAT(b, c.NAT)
	case opPeerNAT:
		b = appendNAT(appendID(b, c.Peer), c.NAT)
	}
	return b
}

func appendAddrs(b []byte, addrs []netip.AddrPort) []byte {
	b = append(b, byte(len(addrs)))
	for _, a := range addrs {
		ip := a.Addr().As16()
		b = append(b, ip[:]...)
		b = binary.LittleEndian.AppendUint16(b, a.Port())
	}
	return b
}

// reader decodes little-endian fields and remembers the first shortfall.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// addrs reads a counted address list; it marks the reader bad beyond
// maxAddrs.
func (r *reader) addrs() []netip.AddrPort {
	n := int(r.take(1)[0])
	if n > maxAddrs {
		r.bad = true
		return nil
	}
	var out []netip.AddrPort
	for range n {
		ip := netip.AddrFrom16([16]byte(r.take(16))).Unmap()
		out = append(out, netip.AddrPortFrom(ip, r.u16()))
	}
	return out
}

func (r *reader) id() net.HostID { return net.HostID(binary.LittleEndian.Uint32(r.take(4))) }
func (r *reader) u16() uint16    { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *reader) i64() int64     { return int64(binary.LittleEndian.Uint64(r.take(8))) }

// parseControl decodes a control message (after its tag). It never panics;
// anything short, long or unknown is errBadControl.
func parseControl(b []byte) (control, error) {
	if len(b) < 1 || b[0] < opPeerAdd || b[0] > opLast {
		return control{}, errBadControl
	}
	c := control{Op: b[0]}
	r := reader{b: b[1:]}
	switch c.Op {
	case opPeerAdd:
		c.Peer = r.id()
		copy(c.Keys.Send[:], r.take(32))
		copy(c.Keys.Recv[:], r.take(32))
		c.Keys.Cipher = net.Cipher(r.take(1)[0])
		if c.Keys.Cipher != net.ChaCha20Poly1305 && c.Keys.Cipher != net.AES256GCM {
			return control{}, errBadControl
		}
		if c.Addrs = r.addrs(); c.Addrs == nil && r.bad {
			return control{}, errBadControl
		}
	case opCandidates:
		if c.Addrs = r.addrs(); c.Addrs == nil && r.bad {
			return control{}, errBadControl
		}
	case opPeerCandidates:
		c.Peer = r.id()
		if c.Addrs = r.addrs(); c.Addrs == nil && r.bad {
			return control{}, errBadControl
		}
	case opPeerRemove:
		c.Peer = r.id()
	case opMemberJoin:
		c.Group, c.Member, c.Count = r.id(), r.id(), r.u16()
		n := int(r.u16())
		if n > MaxCustom {
			return control{}, errBadControl
		}
		c.Custom = append([]byte(nil), r.take(n)...)
		// The member's user ID: at most net.MaxUserID bytes (a
		// length byte holds up to 255).
		u := int(r.take(1)[0])
		if u > net.MaxUserID {
			return control{}, errBadControl
		}
		c.User = string(r.take(u))
	case opMemberLeave:
		c.Group, c.Member, c.Count = r.id(), r.id(), r.u16()
	case opHostChange:
		c.Group, c.Host = r.id(), r.id()
	case opMemberAway, opMemberBack:
		c.Group, c.Member = r.id(), r.id()
	case opTimeReq:
		c.T1 = r.i64()
	case opTimeResp:
		c.T1, c.T2 = r.i64(), r.i64()
	case opNATReport:
		c.NAT = r.nat()
	case opPeerNAT:
		c.Peer, c.NAT = r.id(), r.nat()
	}
	if r.bad || len(r.b) != 0 {
		return control{}, errBadControl
	}
	return c, nil
}

// controlEvent is the application event a member-event control message
// stands for: a client raises it when the message arrives (Client.control),
// the server when it is itself the member concerned (Server.control).
func controlEvent(c control, now time.Time) (Event, bool) {
	switch c.Op {
	case opMemberJoin:
		return Event{Kind: EventMemberJoin, Group: c.Group, Member: c.Member, Count: int(c.Count), Custom: c.Custom, User: c.User, Received: now}, true
	case opMemberLeave:
		return Event{Kind: EventMemberLeave, Group: c.Group, Member: c.Member, Count: int(c.Count), Received: now}, true
	case opHostChange:
		return Event{Kind: EventHostChange, Group: c.Group, Host: c.Host, Received: now}, true
	case opMemberAway:
		return Event{Kind: EventMemberAway, Group: c.Group, Member: c.Member, Received: now}, true
	case opMemberBack:
		return Event{Kind: EventMemberBack, Group: c.Group, Member: c.Member, Received: now}, true
	}
	return Event{}, false
}
