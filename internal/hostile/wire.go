package hostile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// Wire constants, written down again from docs/PROTOCOL.md (version 6) so
// that this package does not depend on engine/net's internals: a change to
// the wire format that forgets the document breaks the attack suite.
const (
	// Version is the protocol version this package speaks.
	Version uint16 = 6
	// MaxDatagram is the largest datagram Skein sends.
	MaxDatagram = 1200
	// LinkDatagram is the budget of a link datagram (room for a relay record).
	LinkDatagram = MaxDatagram - RelayOverhead
	// RelayOverhead is what wrapping a datagram in a relay record adds.
	RelayOverhead = DataHeaderSize + TagSize + FrameHeaderSize + 6
	// HelloSize is the size every hello is padded to.
	HelloSize = 128
	// CookieSize is the size of the server's stateless cookie.
	CookieSize = 24
	// DialTagSize is the dial tag a cookie reply and a reject echo: the
	// first bytes of the hello's ephemeral key.
	DialTagSize = 8
	// CookieReplySize is a cookie reply to a hello without credentials:
	// kind, version, dial tag, cookie.
	CookieReplySize = 3 + DialTagSize + CookieSize
	// RejectSize is a reject but the version mismatch's (kind, reason,
	// version, dial tag); that one is 4 bytes, without the tag.
	RejectSize = 4 + DialTagSize
	// DataHeaderSize is kind (1), sender HostID (4), packet number (6).
	DataHeaderSize = 11
	// TagSize is the AEAD tag.
	TagSize = 16
	// FrameHeaderSize is frame type (1) and body length (2).
	FrameHeaderSize = 3
	// KCPMTU is the KCP segment budget of one datagram.
	KCPMTU = LinkDatagram - DataHeaderSize - TagSize - FrameHeaderSize
	// KCPOverhead is KCP's segment header.
	KCPOverhead = 24
	// StreamSegment is the most stream bytes one KCP message carries (one
	// segment).
	StreamSegment = KCPMTU - KCPOverhead
	// MaxReliable is the largest reliable message (256 KiB); its length
	// in the stream is a uvarint of 1 to 3 bytes.
	MaxReliable = 256 << 10
	// KCPConv is the conversation ID of every Skein KCP stream ("SKN1").
	KCPConv = 0x534b4e31
	// WelcomeHeader is kind, cipher, the server's ephemeral key and its
	// static key: the welcome's associated data.
	WelcomeHeader = 1 + 1 + 32 + 32
	// WelcomeSize is the size of a welcome packet.
	WelcomeSize = WelcomeHeader + 12 + TagSize
	// KeyIDSize is the size of the key ID in the hello.
	KeyIDSize = 8
	// ServerID is the server's HostID.
	ServerID uint32 = 1
)

// Packet kinds (the first byte of every datagram).
const (
	KindHello   byte = 0x01
	KindCookie  byte = 0x02
	KindWelcome byte = 0x03
	KindReject  byte = 0x04
	KindData    byte = 0x10
)

// Frame types inside a sealed data datagram.
const (
	FrameKCP        byte = 0x01
	FrameUnreliable byte = 0x02
	FramePing       byte = 0x03
	FramePong       byte = 0x04
	FrameClose      byte = 0x05
	FrameRelay      byte = 0x06
	FramePunch      byte = 0x07
	FrameFanout     byte = 0x08
	FrameFanned     byte = 0x09
)

// KCP commands.
const (
	KCPPush byte = 81
	KCPAck  byte = 82
)

// Cipher numbers as the welcome carries them.
const (
	CipherChaCha byte = 1
	CipherAES    byte = 2
)

// Hello flags (byte 3).
const (
	// FlagAES asks for AES-256-GCM.
	FlagAES byte = 1 << 0
	// FlagAuth: the hello carries credentials (an auth block).
	FlagAuth byte = 1 << 2
)

// Reject reasons (docs/PROTOCOL.md, Handshake and Credentials).
const (
	RejectVersion         byte = 1
	RejectFull            byte = 2
	RejectBadCookie       byte = 3
	RejectBusy            byte = 4
	RejectUnauthorized    byte = 5
	RejectBanned          byte = 6
	RejectExpired         byte = 7
	RejectAlreadyLoggedIn byte = 8
	RejectAuthUnavailable byte = 9
)

// Layout of a hello with flag bit 2: the cookie area is always 24 bytes,
// then the resume ticket ID, then the auth block's length and bytes.
const (
	helloPrefix    = 4 + 32 + KeyIDSize // kind, version, flags, e_c, key ID
	helloTicketOff = helloPrefix + 1 + CookieSize
	helloAuthOff   = helloTicketOff + TicketSize
	// TicketSize is the resume ticket ID's size in the hello.
	TicketSize = 16
	// CookieKeySize is a cookie reply that names the server's static key
	// (to a hello with flag bit 2), without a certificate.
	CookieKeySize = CookieReplySize + 32
)

// ErrMalformed is returned by every parser here for input it refuses.
var ErrMalformed = errors.New("hostile: malformed packet")

// AppendHello appends a hello padded to HelloSize that names no server key
// (key ID zero). flags bit 0 asks for AES-256-GCM. cookie is empty or the
// server's cookie.
func AppendHello(b []byte, version uint16, flags byte, pub []byte, cookie []byte) []byte {
	return AppendHelloKey(b, version, flags, pub, [KeyIDSize]byte{}, cookie)
}

// AppendHelloKey is AppendHello naming the server key the client expects.
func AppendHelloKey(b []byte, version uint16, flags byte, pub []byte, keyID [KeyIDSize]byte, cookie []byte) []byte {
	start := len(b)
	b = appendHelloPrefix(b, version, flags, pub, keyID, cookie)
	for len(b)-start < HelloSize {
		b = append(b, 0)
	}
	return b
}

// appendHelloPrefix appends a hello's fields up to its cookie, unpadded:
// kind, version, flags, e_c (pub, zero-padded or cut to 32 bytes), key ID,
// cookie length and cookie.
func appendHelloPrefix(b []byte, version uint16, flags byte, pub []byte, keyID [KeyIDSize]byte, cookie []byte) []byte {
	b = append(b, KindHello)
	b = binary.LittleEndian.AppendUint16(b, version)
	b = append(b, flags)
	var k [32]byte
	copy(k[:], pub)
	b = append(b, k[:]...)
	b = append(b, keyID[:]...)
	b = append(b, byte(len(cookie)))
	return append(b, cookie...)
}

// AppendHelloAuth appends a hello with flag bit 2 (added to flags): the
// cookie area of 24 bytes (zeros without a cookie), a zero ticket ID and
// the auth block (empty in the hello without a cookie), padded to at least
// HelloSize.
func AppendHelloAuth(b []byte, version uint16, flags byte, pub []byte, keyID [KeyIDSize]byte, cookie, auth []byte) []byte {
	start := len(b)
	b = appendHelloPrefix(b, version, flags|FlagAuth, pub, keyID, cookie)
	for len(b)-start < helloAuthOff {
		b = append(b, 0) // the rest of the cookie area, the ticket ID
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(auth)))
	b = append(b, auth...)
	for len(b)-start < HelloSize {
		b = append(b, 0)
	}
	return b
}

// ParseCookieKey returns the dial tag, the cookie and the server's static
// key of the cookie reply to a hello with flag bit 2 (67 bytes, or 171
// with a certificate, which is ignored).
func ParseCookieKey(b []byte) (tag, cookie, serverKey []byte, err error) {
	if (len(b) != CookieKeySize && len(b) != CookieKeySize+104) || b[0] != KindCookie {
		return nil, nil, nil, ErrMalformed
	}
	return b[3 : 3+DialTagSize], b[3+DialTagSize : CookieReplySize], b[CookieReplySize:CookieKeySize], nil
}

// SealCredentials returns the auth block of creds for a hello whose first
// 44 bytes are hello (flag bit 2 set, zero ticket ID), sealed to the
// server's static key: ChaCha20-Poly1305 with a zero nonce under
// HKDF-SHA256(es, SHA-256("skein v4 credentials" ‖ hello[:44] ‖ ticket ID
// ‖ S), "skein v4 credentials key"). es is X25519(e_c, S).
func SealCredentials(es, hello, serverKey, creds []byte) ([]byte, error) {
	if len(hello) < helloPrefix || len(serverKey) != 32 {
		return nil, ErrMalformed
	}
	d := sha256.New()
	d.Write([]byte("skein v4 credentials"))
	d.Write(hello[:helloPrefix])
	d.Write(make([]byte, TicketSize))
	d.Write(serverKey)
	key, err := hkdf.Key(sha256.New, es, d.Sum(nil), "skein v4 credentials key", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("hostile: credentials key: %w", err)
	}
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("hostile: credentials: %w", err)
	}
	return a.Seal(nil, make([]byte, chacha20poly1305.NonceSize), creds, nil), nil
}

// ParseCookie returns the cookie of a cookie packet (to a hello without
// credentials).
func ParseCookie(b []byte) ([]byte, error) {
	_, c, err := ParseCookieTag(b)
	return c, err
}

// ParseCookieTag returns the dial tag and the cookie of a cookie packet.
func ParseCookieTag(b []byte) (tag, cookie []byte, err error) {
	if len(b) != CookieReplySize || b[0] != KindCookie {
		return nil, nil, ErrMalformed
	}
	return b[3 : 3+DialTagSize], b[3+DialTagSize:], nil
}

// ParseReject returns a reject packet's reason and the server's version:
// a tagged reject, or the 4-byte version mismatch.
func ParseReject(b []byte) (reason byte, version uint16, err error) {
	if len(b) < 4 || b[0] != KindReject || (len(b) != RejectSize && (len(b) != 4 || b[1] != RejectVersion)) {
		return 0, 0, ErrMalformed
	}
	return b[1], binary.LittleEndian.Uint16(b[2:]), nil
}

// KeyID is a server key's ID as a hello names it: the first 8 bytes of
// the key's SHA-256 hash.
func KeyID(serverKey []byte) [KeyIDSize]byte {
	sum := sha256.Sum256(serverKey)
	var id [KeyIDSize]byte
	copy(id[:], sum[:])
	return id
}

// Welcome is a parsed welcome packet before its body is opened.
type Welcome struct {
	Cipher    byte
	ServerPub []byte // the server's ephemeral key: 32 bytes, aliases the packet
	Static    []byte // the server's static key: 32 bytes, aliases the packet
	packet    []byte
}

// ParseWelcome checks a welcome's layout and returns its cleartext part.
func ParseWelcome(b []byte) (Welcome, error) {
	if len(b) != WelcomeSize || b[0] != KindWelcome {
		return Welcome{}, ErrMalformed
	}
	if b[1] != CipherChaCha && b[1] != CipherAES {
		return Welcome{}, ErrMalformed
	}
	return Welcome{Cipher: b[1], ServerPub: b[2:34], Static: b[34:WelcomeHeader], packet: b}, nil
}

// WelcomeBody is what the sealed part of a welcome says.
type WelcomeBody struct {
	ClientID  uint32
	PingMs    uint32
	TimeoutMs uint32
}

// Open opens the welcome's sealed body with the client's view of the keys
// (Recv is the server→client key) and decodes it.
func (w Welcome) Open(k Keys) (WelcomeBody, error) {
	a, err := newAEAD(k.Cipher, k.Recv[:])
	if err != nil {
		return WelcomeBody{}, err
	}
	var nonce [12]byte
	body, err := a.Open(nil, nonce[:], w.packet[WelcomeHeader:], w.packet[:WelcomeHeader])
	if err != nil {
		return WelcomeBody{}, fmt.Errorf("welcome seal: %w", ErrMalformed)
	}
	if len(body) != 12 {
		return WelcomeBody{}, ErrMalformed
	}
	return WelcomeBody{
		ClientID:  binary.LittleEndian.Uint32(body),
		PingMs:    binary.LittleEndian.Uint32(body[4:]),
		TimeoutMs: binary.LittleEndian.Uint32(body[8:]),
	}, nil
}

// Keys are one end's view of a link's keys: Send seals what it sends, Recv
// opens what it receives.
type Keys struct {
	Send, Recv [32]byte
	Cipher     byte
}

// Transcript is the handshake's transcript hash: SHA-256("skein v4
// handshake" ‖ the hello's first 44 bytes (kind, version, flags, client
// ephemeral key, key ID) ‖ the welcome's first 66 bytes).
//
// For a hello with flag bit 2 the auth block, after its length (2), comes
// between the hello's bytes and the welcome's.
func Transcript(hello, welcome []byte) []byte {
	h := sha256.New()
	h.Write([]byte("skein v4 handshake"))
	h.Write(hello[:helloPrefix])
	if hello[3]&FlagAuth != 0 && len(hello) >= helloAuthOff+2 {
		n := int(binary.LittleEndian.Uint16(hello[helloAuthOff:]))
		h.Write(hello[helloAuthOff : helloAuthOff+2+min(n, len(hello)-helloAuthOff-2)])
	}
	h.Write(welcome[:WelcomeHeader])
	return h.Sum(nil)
}

// DeriveClientKeys is the project's key derivation, as the client sees it:
// HKDF-SHA256(secret = ee ‖ es, salt = transcript, "skein v4 link keys"),
// client→server key first. ee is X25519(client ephemeral, server
// ephemeral), es X25519(client ephemeral, server static).
func DeriveClientKeys(ee, es, transcript []byte, cipherID byte) (Keys, error) {
	secret := append(append([]byte(nil), ee...), es...)
	okm, err := hkdf.Key(sha256.New, secret, transcript, "skein v4 link keys", 64)
	if err != nil {
		return Keys{}, fmt.Errorf("hostile: derive keys: %w", err)
	}
	var k Keys
	copy(k.Send[:], okm[:32])
	copy(k.Recv[:], okm[32:])
	k.Cipher = cipherID
	return k, nil
}

func newAEAD(c byte, key []byte) (cipher.AEAD, error) {
	if c == CipherAES {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("hostile: aes: %w", err)
		}
		return cipher.NewGCM(b)
	}
	return chacha20poly1305.New(key)
}

// Sealer seals and opens data datagrams of one link.
type Sealer struct {
	send, recv cipher.AEAD
}

// NewSealer makes a Sealer for k.
func NewSealer(k Keys) (*Sealer, error) {
	s, err := newAEAD(k.Cipher, k.Send[:])
	if err != nil {
		return nil, err
	}
	r, err := newAEAD(k.Cipher, k.Recv[:])
	if err != nil {
		return nil, err
	}
	return &Sealer{send: s, recv: r}, nil
}

func nonce(pn uint64) []byte {
	var n [12]byte
	binary.LittleEndian.PutUint64(n[:], pn)
	return n[:]
}

// Seal appends a data datagram: header (from, pn) and the sealed plaintext.
func (s *Sealer) Seal(b []byte, from uint32, pn uint64, plaintext []byte) []byte {
	start := len(b)
	b = AppendDataHeader(b, from, pn)
	return s.send.Seal(b, nonce(pn), plaintext, b[start:])
}

// Open authenticates a data datagram and returns its sender, packet number
// and plaintext (a new slice).
func (s *Sealer) Open(b []byte) (from uint32, pn uint64, plain []byte, err error) {
	from, pn, err = ParseDataHeader(b)
	if err != nil {
		return 0, 0, nil, err
	}
	plain, err = s.recv.Open(nil, nonce(pn), b[DataHeaderSize:], b[:DataHeaderSize])
	if err != nil {
		return 0, 0, nil, fmt.Errorf("open: %w", ErrMalformed)
	}
	return from, pn, plain, nil
}

// AppendDataHeader appends the 11-byte cleartext header of a data datagram.
func AppendDataHeader(b []byte, from uint32, pn uint64) []byte {
	b = append(b, KindData)
	b = binary.LittleEndian.AppendUint32(b, from)
	return append(b, byte(pn), byte(pn>>8), byte(pn>>16), byte(pn>>24), byte(pn>>32), byte(pn>>40))
}

// ParseDataHeader reads a data datagram's sender and packet number.
func ParseDataHeader(b []byte) (from uint32, pn uint64, err error) {
	if len(b) < DataHeaderSize+TagSize || b[0] != KindData {
		return 0, 0, ErrMalformed
	}
	p := b[5:11]
	pn = uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 | uint64(p[4])<<32 | uint64(p[5])<<40
	return binary.LittleEndian.Uint32(b[1:5]), pn, nil
}

// AppendFrame appends one frame. The length is written as len(body) mod
// 65536: a hostile caller may lie with Frame's raw form instead.
func AppendFrame(b []byte, typ byte, body []byte) []byte {
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// Frame is one decoded frame; Body aliases the plaintext.
type Frame struct {
	Type byte
	Body []byte
}

// ParseFrames splits a plaintext into frames, checking only that each
// length stays inside the plaintext (the receiver's checks are the
// server's business; this is for reading what the server sends).
func ParseFrames(p []byte) ([]Frame, error) {
	if len(p) == 0 {
		return nil, ErrMalformed
	}
	var out []Frame
	for len(p) > 0 {
		if len(p) < FrameHeaderSize {
			return out, ErrMalformed
		}
		n := int(binary.LittleEndian.Uint16(p[1:3]))
		if n > len(p)-FrameHeaderSize {
			return out, ErrMalformed
		}
		out = append(out, Frame{Type: p[0], Body: p[FrameHeaderSize : FrameHeaderSize+n]})
		p = p[FrameHeaderSize+n:]
	}
	return out, nil
}

// Segment is one KCP segment as it goes on the wire; any field may be set
// to anything, which is the point.
type Segment struct {
	Cmd, Frg byte
	Wnd      uint16
	TS       uint32
	SN, UNA  uint32
	Data     []byte
	// LenOverride, when nonzero, is the length written instead of
	// len(Data) (a lie). A PUSH with no Data is an empty message.
	LenOverride uint32
}

// AppendSegment appends a KCP segment (24-byte header and data) with the
// Skein conversation ID.
func AppendSegment(b []byte, s Segment) []byte {
	b = binary.LittleEndian.AppendUint32(b, KCPConv)
	b = append(b, s.Cmd, s.Frg)
	b = binary.LittleEndian.AppendUint16(b, s.Wnd)
	b = binary.LittleEndian.AppendUint32(b, s.TS)
	b = binary.LittleEndian.AppendUint32(b, s.SN)
	b = binary.LittleEndian.AppendUint32(b, s.UNA)
	n := uint32(len(s.Data))
	if s.LenOverride != 0 {
		n = s.LenOverride
	}
	b = binary.LittleEndian.AppendUint32(b, n)
	return append(b, s.Data...)
}

// AppendRelayRecord appends a relay record (destination, length, datagram).
func AppendRelayRecord(b []byte, to uint32, inner []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, to)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(inner)))
	return append(b, inner...)
}

// AppendFanout appends a fan-out frame body: group, recipients (none:
// every member but the sender), channel, sequence, payload.
func AppendFanout(b []byte, group uint32, to []uint32, channel byte, seq uint32, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, group)
	b = append(b, byte(len(to)))
	for _, id := range to {
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	b = append(b, channel)
	b = binary.LittleEndian.AppendUint32(b, seq)
	return append(b, payload...)
}

// Sync layer tags and the control operation this package reads.
const (
	TagUser    byte = 0x00
	TagControl byte = 0x01
	TagGroup   byte = 0x02
	opPeerAdd  byte = 1
	// opCandidates reports a client's LAN addresses: count(1) × (ip16, port2).
	opCandidates byte = 8
)

// PeerAdd is the engine/sync control message that hands a client a peer's
// link keys (as the receiver uses them).
type PeerAdd struct {
	Peer uint32
	Keys Keys
}

// ParsePeerAdd decodes a reliable message from the server if it is a
// PeerAdd control message (tag included); ok is false for any other.
func ParsePeerAdd(m []byte) (p PeerAdd, ok bool, err error) {
	if len(m) < 2 || m[0] != TagControl || m[1] != opPeerAdd {
		return PeerAdd{}, false, nil
	}
	b := m[2:]
	if len(b) < 4+64+1+1 {
		return PeerAdd{}, true, ErrMalformed
	}
	p.Peer = binary.LittleEndian.Uint32(b)
	copy(p.Keys.Send[:], b[4:36])
	copy(p.Keys.Recv[:], b[36:68])
	p.Keys.Cipher = b[68]
	if p.Keys.Cipher != CipherChaCha && p.Keys.Cipher != CipherAES {
		return PeerAdd{}, true, ErrMalformed
	}
	n := int(b[69])
	if len(b) != 70+18*n {
		return PeerAdd{}, true, ErrMalformed
	}
	return p, true, nil
}

// TCPFrame frames a datagram for the TCP fallback: 2-byte big-endian length.
func TCPFrame(b []byte, dgram []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(dgram)))
	return append(b, dgram...)
}
