package net

import (
	"encoding/binary"
	"errors"
)

// ProtocolVersion is the wire protocol version carried in every hello. A
// server refuses a client whose version differs.
const ProtocolVersion uint16 = 6

// Packet kinds: the first byte of every datagram. docs/PROTOCOL.md is the
// reference for each layout.
const (
	kindHello   byte = 0x01 // client → server, cleartext, padded to helloSize
	kindCookie  byte = 0x02 // server → client, cleartext, stateless cookie
	kindWelcome byte = 0x03 // server → client: server keys + sealed welcome
	kindReject  byte = 0x04 // server → client, cleartext refusal with a reason
	kindHairpin byte = 0x05 // a client to its own public address: token(16), never answered
	kindData    byte = 0x10 // sealed frames between two hosts that share keys
)

// Sizes of the fixed parts of the wire format.
const (
	// MaxDatagram is the largest datagram Skein sends: well under the IPv6
	// minimum MTU once IP and UDP headers are added, so nothing relies on IP
	// fragmentation.
	MaxDatagram = 1200

	dataHeaderSize = 1 + 4 + 6 // kind, sender HostID, packet number (48 bit)
	sealOverhead   = 16        // AEAD tag
	frameHeader    = 1 + 2     // frame type, body length
	unrelHeader    = 1 + 4     // channel, sequence

	keySize    = 32
	cookieSize = 4 + 20 // timestamp (s) + truncated HMAC-SHA256
	// helloSize is the size every hello is padded to, so no reply the server
	// sends to an unverified source can be larger than the request.
	helloSize = 128

	// relayRecordHeader precedes each relayed datagram inside a relay frame:
	// the HostID it is for, and its length.
	relayRecordHeader = 4 + 2
	// relayOverhead is what wrapping a datagram for the relay adds.
	relayOverhead = dataHeaderSize + sealOverhead + frameHeader + relayRecordHeader
	// linkDatagram is the budget of every link datagram, so that any of them
	// still fits MaxDatagram once wrapped for the relay.
	linkDatagram = MaxDatagram - relayOverhead

	// maxFramesPayload is what fits in one sealed link datagram.
	maxFramesPayload = linkDatagram - dataHeaderSize - sealOverhead
	// kcpMTU is the KCP segment budget: one KCP frame per datagram.
	kcpMTU = maxFramesPayload - frameHeader
	// MaxUnreliable is the largest unreliable payload: it must fit one
	// datagram with every header.
	MaxUnreliable = maxFramesPayload - frameHeader - unrelHeader
)

// frameType is the first byte of a frame inside a sealed data datagram.
// A switch over it names every type or has a default that says what
// happens to the others (the exhaustive linter checks).
type frameType byte

// Frame types inside a sealed data datagram.
const (
	frameKCP        frameType = 0x01 // KCP segments of the reliable stream
	frameUnreliable frameType = 0x02 // channel(1) seq(4) payload
	framePing       frameType = 0x03 // echo(8)
	framePong       frameType = 0x04 // echo(8) inbound loss per mille(2)
	frameClose      frameType = 0x05 // reason(1) message(utf-8, ≤ 200 bytes)
	frameRelay      frameType = 0x06 // records: to(4) len(2) sealed datagram
	framePunch      frameType = 0x07 // kind(1) token(8): hole-punching probe or ack
	frameFanout     frameType = 0x08 // group(4) count(1) count×to(4) channel(1) seq(4) payload
	frameFanned     frameType = 0x09 // from(4) channel(1) seq(4) payload

	framePathChallenge frameType = 0x0a // token(8): is the peer at this address?
	framePathResponse  frameType = 0x0b // token(8): the answer, from that address
	frameForceRelay    frameType = 0x0c // on(1) seq(4): the peer forced (1) or released (0) the relay
	frameNAT           frameType = 0x0d // NAT-type probe or reply, natBodySize bytes (natprobe.go)
)

// Fixed parts of the fan-out frames: what precedes the channel, sequence
// and payload they carry like an unreliable frame.
const (
	fanoutHeader = 4 + 1 // group, count of listed recipients
	fannedHeader = 4     // the sender's HostID
)

// Reject reasons carried in a reject packet.
const (
	rejectVersion   byte = 1
	rejectFull      byte = 2
	rejectBadCookie byte = 3
	rejectBusy      byte = 4
	// Refusals of the server's Authenticate hook (auth.go), after the
	// cookie and before any slot.
	rejectUnauthorized    byte = 5
	rejectBanned          byte = 6
	rejectExpired         byte = 7
	rejectAlreadyLoggedIn byte = 8
	rejectAuthUnavailable byte = 9
)

var errMalformed = errors.New("malformed datagram")

// dataHeader is the cleartext header of a data datagram. It is the AEAD's
// associated data, so it cannot be altered in flight.
type dataHeader struct {
	From HostID
	PN   uint64 // packet number, 48 bits on the wire
}

const maxPN = 1<<48 - 1

func appendDataHeader(b []byte, h dataHeader) []byte {
	b = append(b, kindData)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.From))
	return append(b, byte(h.PN), byte(h.PN>>8), byte(h.PN>>16), byte(h.PN>>24), byte(h.PN>>32), byte(h.PN>>40))
}

func parseDataHeader(b []byte) (dataHeader, error) {
	if len(b) < dataHeaderSize+sealOverhead || b[0] != kindData {
		return dataHeader{}, errMalformed
	}
	var h dataHeader
	h.From = HostID(binary.LittleEndian.Uint32(b[1:5]))
	p := b[5:11]
	h.PN = uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 | uint64(p[4])<<32 | uint64(p[5])<<40
	return h, nil
}

// frame is one decoded frame; Body aliases the datagram buffer.
type frame struct {
	Type frameType
	Body []byte
}

func appendFrame(b []byte, typ frameType, body []byte) []byte {
	b = append(b, byte(typ))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// nextFrame splits the first frame off p. It returns errMalformed when the
// length runs past the end or the type is unknown.
func nextFrame(p []byte) (frame, []byte, error) {
	if len(p) < frameHeader {
		return frame{}, nil, errMalformed
	}
	typ := frameType(p[0])
	n := int(binary.LittleEndian.Uint16(p[1:3]))
	if n > len(p)-frameHeader {
		return frame{}, nil, errMalformed
	}
	if typ < frameKCP || typ > frameNAT {
		return frame{}, nil, errMalformed
	}
	return frame{Type: typ, Body: p[frameHeader : frameHeader+n]}, p[frameHeader+n:], nil
}

// parseFrames decodes every frame of a plaintext payload. An empty payload
// is malformed: every datagram carries at least one frame.
func parseFrames(p []byte, out []frame) ([]frame, error) {
	if len(p) == 0 {
		return out, errMalformed
	}
	for len(p) > 0 {
		f, rest, err := nextFrame(p)
		if err != nil {
			return out, err
		}
		if err := checkFrame(f); err != nil {
			return out, err
		}
		out = append(out, f)
		p = rest
	}
	return out, nil
}

// checkFrame validates the fixed-size parts of each frame type.
func checkFrame(f frame) error {
	switch f.Type {
	case frameKCP:
		if len(f.Body) == 0 {
			return errMalformed
		}
	case frameUnreliable:
		if len(f.Body) < unrelHeader {
			return errMalformed
		}
	case frameFanout:
		b := f.Body
		if len(b) < fanoutHeader || len(b) < fanoutHeader+4*int(b[4])+unrelHeader+1 {
			return errMalformed
		}
	case frameFanned:
		if len(f.Body) < fannedHeader+unrelHeader+1 {
			return errMalformed
		}
	case framePing:
		if len(f.Body) != 8 {
			return errMalformed
		}
	case framePong:
		if len(f.Body) != 10 {
			return errMalformed
		}
	case frameClose:
		if len(f.Body) < 1 || len(f.Body) > 1+maxCloseMessage {
			return errMalformed
		}
	case framePathChallenge, framePathResponse:
		if len(f.Body) != 8 {
			return errMalformed
		}
	case framePunch:
		if len(f.Body) != 9 || (f.Body[0] != punchProbe && f.Body[0] != punchAck) {
			return errMalformed
		}
	case frameForceRelay:
		if len(f.Body) != forceRelayBody || f.Body[0] > 1 {
			return errMalformed
		}
	case frameNAT:
		return checkNATBody(f.Body)
	case frameRelay:
		b := f.Body
		if len(b) == 0 {
			return errMalformed
		}
		for len(b) > 0 {
			_, inner, rest, err := nextRelayRecord(b)
			if err != nil {
				return err
			}
			if len(inner) < dataHeaderSize+sealOverhead || inner[0] != kindData {
				return errMalformed
			}
			b = rest
		}
	}
	return nil
}

// appendRelayRecord appends one relay record: the destination and the
// sealed datagram for it.
func appendRelayRecord(b []byte, to HostID, inner []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(to))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(inner)))
	return append(b, inner...)
}

// nextRelayRecord splits the first record off a relay frame body.
func nextRelayRecord(b []byte) (to HostID, inner, rest []byte, err error) {
	if len(b) < relayRecordHeader {
		return 0, nil, nil, errMalformed
	}
	to = HostID(binary.LittleEndian.Uint32(b))
	n := int(binary.LittleEndian.Uint16(b[4:]))
	if n > len(b)-relayRecordHeader {
		return 0, nil, nil, errMalformed
	}
	return to, b[relayRecordHeader : relayRecordHeader+n], b[relayRecordHeader+n:], nil
}

// splitFanout splits a fan-out frame body (checked by checkFrame) into its
// group, its raw list of recipients (count × HostID, empty: every member
// but the sender) and the unreliable body it carries (channel, sequence,
// payload).
func splitFanout(b []byte) (group HostID, list, unrel []byte) {
	n := 4 * int(b[4])
	return HostID(binary.LittleEndian.Uint32(b)), b[fanoutHeader : fanoutHeader+n], b[fanoutHeader+n:]
}

// fanoutFits reports whether a fan-out frame listing k recipients and
// carrying an n-byte payload fits one datagram on the server link.
func fanoutFits(k, n int) bool {
	return k <= 255 && dataHeaderSize+frameHeader+fanoutHeader+4*k+unrelHeader+n+sealOverhead <= MaxDatagram
}

const maxCloseMessage = 200

// hello is the client's first packet.
type hello struct {
	Version uint16
	Flags   byte // helloAES: the client has AES hardware and prefers AES-256-GCM
	Pub     [keySize]byte
	KeyID   KeyID  // the server key the client expects; zero: any (trust on first use)
	Cookie  []byte // empty or cookieSize bytes
	// Long: the hello came padded to helloCertSize, so the server may
	// answer with a certificate (never more bytes than it received).
	Long bool
	// Ticket is the resume ticket ID (flags bit 3), carried as is; zeros
	// unless helloResume.
	Ticket [ticketSize]byte
	// Auth is the sealed auth block (flags bit 2, in a hello with a
	// cookie): the client's credentials sealed to the server's static key
	// (auth.go). It aliases the datagram.
	Auth []byte
}

// Hello flags.
const (
	helloAES byte = 1 << 0
	// helloCert asks for the server key's operator certificate in the
	// welcome; such a hello is padded to helloCertSize.
	helloCert byte = 1 << 1
	// helloAuth: the client sends credentials. Without a cookie it asks
	// for the server's static key in the cookie reply; with one, the hello
	// carries the sealed auth block at helloAuthOff.
	helloAuth byte = 1 << 2
	// helloResume: the hello carries a resume ticket ID at helloTicketOff.
	helloResume byte = 1 << 3
)

// Offsets of the hello's optional parts (flags bits 2 and 3): the cookie
// area is fixed at cookieSize bytes (zeros without a cookie), then the
// resume ticket ID, then the auth block: length (2) ‖ sealed bytes.
const (
	helloTicketOff = helloCookieLen + 1 + cookieSize // 69
	ticketSize     = 16
	helloAuthOff   = helloTicketOff + ticketSize // 85
	// MaxCredentials bounds the credentials a client sends in one hello
	// (Dial refuses more; a server drops a larger auth block as
	// malformed). 512 bytes hold the largest connect token (engine/token,
	// 461 bytes) and keep the hello (at most 615 bytes) well inside
	// MaxDatagram.
	MaxCredentials = 512
	maxAuthBlock   = MaxCredentials + sealOverhead
)

// helloCertSize is the size a hello asking for a certificate is padded to:
// the welcome that carries one (welcomeHeader + body + certificate + tag)
// stays smaller.
const helloCertSize = 256

func appendHello(b []byte, h hello) []byte {
	start := len(b)
	b = append(b, kindHello)
	b = binary.LittleEndian.AppendUint16(b, h.Version)
	b = append(b, h.Flags)
	b = append(b, h.Pub[:]...)
	b = append(b, h.KeyID[:]...)
	b = append(b, byte(len(h.Cookie)))
	b = append(b, h.Cookie...)
	if h.Flags&(helloAuth|helloResume) != 0 {
		for len(b)-start < helloTicketOff {
			b = append(b, 0)
		}
		b = append(b, h.Ticket[:]...)
		if h.Flags&helloAuth != 0 {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Auth)))
			b = append(b, h.Auth...)
		}
	}
	size := helloSize
	if h.Flags&helloCert != 0 {
		size = helloCertSize
	}
	for len(b)-start < size {
		b = append(b, 0)
	}
	return b
}

func parseHello(b []byte) (hello, error) {
	var h hello
	// The version is read first so that a hello from a future version with
	// another layout still gets a clear version refusal.
	if len(b) < 3 || b[0] != kindHello {
		return h, errMalformed
	}
	h.Version = binary.LittleEndian.Uint16(b[1:3])
	if len(b) < helloSize {
		return h, errMalformed
	}
	copy(h.Pub[:], b[4:4+keySize])
	if h.Version != ProtocolVersion {
		return h, nil // its layout is not ours to check: it gets the version reject
	}
	h.Flags = b[3]
	copy(h.KeyID[:], b[4+keySize:helloCookieLen])
	n := int(b[helloCookieLen])
	if n != 0 && n != cookieSize {
		return h, errMalformed
	}
	h.Cookie = b[helloCookieLen+1 : helloCookieLen+1+n]
	h.Long = len(b) >= helloCertSize
	if h.Flags&(helloAuth|helloResume) == 0 {
		return h, nil
	}
	copy(h.Ticket[:], b[helloTicketOff:helloAuthOff])
	if h.Flags&helloAuth == 0 {
		return h, nil
	}
	m := int(binary.LittleEndian.Uint16(b[helloAuthOff:]))
	switch {
	case m > maxAuthBlock || helloAuthOff+2+m > len(b):
		return h, errMalformed
	case (m == 0) != (n == 0):
		// The first hello asks for the key and carries no block; the
		// second carries one (at least a tag's worth).
		return h, errMalformed
	case m != 0 && m < sealOverhead:
		return h, errMalformed
	}
	h.Auth = b[helloAuthOff+2 : helloAuthOff+2+m]
	return h, nil
}

// dialTagSize is how many bytes of the hello's ephemeral key e_c a cookie
// reply and a reject echo (the dial tag, since version 6): e_c is fresh
// for every Dial, so a client takes only the answers to its own hello, not
// a late answer to an earlier Dial from the same socket, nor one forged by
// whoever does not see its hello.
const dialTagSize = 8

// dialTag is the dial tag of a hello with ephemeral key pub.
func dialTag(pub *[keySize]byte) []byte { return pub[:dialTagSize] }

func appendCookie(b []byte, pub *[keySize]byte, cookie []byte) []byte {
	b = append(b, kindCookie)
	b = binary.LittleEndian.AppendUint16(b, ProtocolVersion)
	b = append(b, dialTag(pub)...)
	return append(b, cookie...)
}

// cookieReplySize is a cookie reply without the server's key: kind,
// version, dial tag, cookie.
const cookieReplySize = 3 + dialTagSize + cookieSize

// appendCookieKey appends the cookie reply to a hello that set helloAuth:
// the cookie, then the server's static key S the credentials are to be
// sealed to, and its operator certificate if cert is not empty (only for a
// hello padded to helloCertSize: 171 bytes, still smaller).
func appendCookieKey(b []byte, pub *[keySize]byte, cookie []byte, key *ServerKey, cert []byte) []byte {
	b = appendCookie(b, pub, cookie)
	b = append(b, key[:]...)
	return append(b, cert...)
}

// parseCookie splits a cookie reply into its dial tag, the cookie and,
// for the longer replies to a hello that set helloAuth, the server's
// static key and its certificate (both empty otherwise).
func parseCookie(b []byte) (tag, cookie, key, cert []byte, err error) {
	if len(b) < cookieReplySize || b[0] != kindCookie {
		return nil, nil, nil, nil, errMalformed
	}
	tag, cookie = b[3:3+dialTagSize], b[3+dialTagSize:cookieReplySize]
	switch len(b) {
	case cookieReplySize:
		return tag, cookie, nil, nil, nil
	case cookieReplySize + keySize:
		return tag, cookie, b[cookieReplySize:], nil, nil
	case cookieReplySize + keySize + certSize:
		return tag, cookie, b[cookieReplySize : cookieReplySize+keySize], b[cookieReplySize+keySize:], nil
	}
	return nil, nil, nil, nil, errMalformed
}

// welcomeBody is sealed with the server→client key at packet number 0.
type welcomeBody struct {
	ClientID HostID
	Ping     uint32 // ms
	Timeout  uint32 // ms
	Cert     []byte // empty, or the server key's certificate (certSize)
}

const welcomeBodySize = 12

func appendWelcomeBody(b []byte, w welcomeBody) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(w.ClientID))
	b = binary.LittleEndian.AppendUint32(b, w.Ping)
	b = binary.LittleEndian.AppendUint32(b, w.Timeout)
	return append(b, w.Cert...)
}

func parseWelcomeBody(b []byte) (welcomeBody, error) {
	if len(b) != welcomeBodySize && len(b) != welcomeBodySize+certSize {
		return welcomeBody{}, errMalformed
	}
	return welcomeBody{
		ClientID: HostID(binary.LittleEndian.Uint32(b)),
		Ping:     binary.LittleEndian.Uint32(b[4:]),
		Timeout:  binary.LittleEndian.Uint32(b[8:]),
		Cert:     b[welcomeBodySize:],
	}, nil
}

// helloCookieLen is the offset of the hello's cookie length: after kind,
// version, flags, the client's ephemeral key and the key ID.
const helloCookieLen = 1 + 2 + 1 + keySize + keyIDSize

// welcomeHeader is kind + the cipher the server chose + its ephemeral
// public key + its static public key; the sealed body follows (the header
// is its associated data, so neither the choice nor the keys can be
// altered in flight).
const welcomeHeader = 1 + 1 + keySize + keySize

// Reject sizes: a reject echoes the hello's dial tag; the version
// mismatch reject keeps the layout every version reads (kind, reason,
// version), as the server cannot know where a hello of another version
// keeps its key, and its client must learn why.
const (
	rejectSize        = 4 + dialTagSize
	versionRejectSize = 4
)

// appendReject appends a reject of a hello with ephemeral key pub.
func appendReject(b []byte, reason byte, pub *[keySize]byte) []byte {
	b = append(b, kindReject, reason)
	b = binary.LittleEndian.AppendUint16(b, ProtocolVersion)
	return append(b, dialTag(pub)...)
}

// appendVersionReject appends the reject of a hello of another version.
func appendVersionReject(b []byte) []byte {
	b = append(b, kindReject, rejectVersion)
	return binary.LittleEndian.AppendUint16(b, ProtocolVersion)
}

// parseReject reads a reject: its reason, the server's version and the
// dial tag it echoes. A reject without a tag is read only as a version
// mismatch: tag is then nil (and the client takes it only from a server
// of another version, as one of its own version tags every reject).
func parseReject(b []byte) (reason byte, version uint16, tag []byte, err error) {
	if len(b) < versionRejectSize || b[0] != kindReject {
		return 0, 0, nil, errMalformed
	}
	reason, version = b[1], binary.LittleEndian.Uint16(b[2:])
	switch {
	case len(b) == rejectSize:
		return reason, version, b[4:], nil
	case len(b) == versionRejectSize && reason == rejectVersion:
		return reason, version, nil, nil
	}
	return 0, 0, nil, errMalformed
}
