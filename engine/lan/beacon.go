package lan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Beacon wire format, version 1 (all integers big-endian, no padding):
//
//	offset size field
//	0      4    magic "SKLN"
//	4      1    format version (1)
//	5      1    flags: bit 0 = leaving (goodbye); other bits must be zero
//	6      8    instance: random per advertiser, names the entry
//	14     2    protocol: the game's protocol version
//	16     2    players
//	18     2    capacity (0: not limited)
//	20     2    port to dial on the beacon's source address (not 0)
//	22     1+k  kind: length k (0..MaxKind), then k bytes of [A-Za-z0-9._-]
//	       1+n  name: length n (0..MaxName), then n bytes of UTF-8 without
//	            control characters
//	       1+i  info: length i (0..MaxInfo), then i opaque bytes
//
// Nothing may follow the info field. A change that old decoders cannot read
// bumps the format version; decoders drop other versions (DropVersion).
const (
	// FormatVersion is the version of the beacon wire format this package
	// writes and reads.
	FormatVersion = 1
	// MaxKind, MaxName and MaxInfo bound the variable fields, in bytes.
	MaxKind = 32
	MaxName = 64
	MaxInfo = 128
	// MaxBeaconSize is the largest encoded beacon: well under any MTU, so a
	// beacon is always one unfragmented datagram.
	MaxBeaconSize = headerSize + 3 + MaxKind + MaxName + MaxInfo

	headerSize   = 22
	flagLeaving  = 1 << 0
	knownFlags   = flagLeaving
	magic0       = 'S'
	magic1       = 'K'
	magic2       = 'L'
	magic3       = 'N'
	minBeaconLen = headerSize + 3
)

// Beacon is what an Advertiser announces: one game (or chat, or match
// server) that a player on the LAN may join. Everything in a received beacon
// is untrusted input: show it, never act on it without the player's choice.
type Beacon struct {
	// Instance names the advertiser: entries are keyed by it. Advertise
	// picks a random one when it is zero.
	Instance uint64
	// Kind says what is advertised, such as "skein-chat" or "arena":
	// up to MaxKind bytes of ASCII letters, digits, '.', '_' and '-'.
	Kind string
	// Name is what a player sees in a list: up to MaxName bytes of UTF-8
	// without control characters.
	Name string
	// Protocol is the game's protocol version, so a browser can hide what
	// it cannot join.
	Protocol uint16
	// Players and Capacity count the players in and the room for them
	// (Capacity 0: not limited).
	Players, Capacity uint16
	// Port is the UDP port to dial on the address the beacon came from.
	// A beacon cannot point at another machine.
	Port uint16
	// Info is up to MaxInfo opaque bytes for the game (map, mode...).
	Info []byte
	// Leaving marks the goodbye an Advertiser sends when it closes:
	// browsers drop the entry at once instead of waiting for it to expire.
	Leaving bool
}

// Errors from Encode and Decode. Decode's errors wrap one of these.
var (
	// ErrShort: the datagram ends before the beacon does.
	ErrShort = errors.New("skein/lan: beacon truncated")
	// ErrMagic: not a Skein beacon (another program uses the port).
	ErrMagic = errors.New("skein/lan: not a beacon")
	// ErrVersion: a beacon format version this package does not read.
	ErrVersion = errors.New("skein/lan: unknown beacon version")
	// ErrTooLarge: longer than MaxBeaconSize, or a field over its limit.
	ErrTooLarge = errors.New("skein/lan: beacon too large")
	// ErrMalformed: a field holds a value the format forbids.
	ErrMalformed = errors.New("skein/lan: malformed beacon")
)

// Validate reports whether b can be encoded: field sizes, kind characters,
// name without control characters, non-zero port.
func (b *Beacon) Validate() error {
	switch {
	case len(b.Kind) > MaxKind:
		return fmt.Errorf("kind is %d bytes, limit %d: %w", len(b.Kind), MaxKind, ErrTooLarge)
	case len(b.Name) > MaxName:
		return fmt.Errorf("name is %d bytes, limit %d: %w", len(b.Name), MaxName, ErrTooLarge)
	case len(b.Info) > MaxInfo:
		return fmt.Errorf("info is %d bytes, limit %d: %w", len(b.Info), MaxInfo, ErrTooLarge)
	case !validKind(b.Kind):
		return fmt.Errorf("kind %q: only letters, digits, '.', '_' and '-': %w", b.Kind, ErrMalformed)
	case !validName(b.Name):
		return fmt.Errorf("name %q: invalid UTF-8 or control characters: %w", b.Name, ErrMalformed)
	case b.Port == 0:
		return fmt.Errorf("port 0: %w", ErrMalformed)
	}
	return nil
}

// AppendBeacon appends the encoding of b to dst.
func AppendBeacon(dst []byte, b *Beacon) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return dst, err
	}
	var flags byte
	if b.Leaving {
		flags |= flagLeaving
	}
	dst = append(dst, magic0, magic1, magic2, magic3, FormatVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, b.Instance)
	dst = binary.BigEndian.AppendUint16(dst, b.Protocol)
	dst = binary.BigEndian.AppendUint16(dst, b.Players)
	dst = binary.BigEndian.AppendUint16(dst, b.Capacity)
	dst = binary.BigEndian.AppendUint16(dst, b.Port)
	dst = append(dst, byte(len(b.Kind)))
	dst = append(dst, b.Kind...)
	dst = append(dst, byte(len(b.Name)))
	dst = append(dst, b.Name...)
	dst = append(dst, byte(len(b.Info)))
	dst = append(dst, b.Info...)
	return dst, nil
}

// DecodeBeacon parses one datagram. It never panics, and it checks
// everything Validate checks: a decoded beacon encodes back to the same
// bytes. The returned Beacon does not share memory with data.
func DecodeBeacon(data []byte) (Beacon, error) {
	var b Beacon
	if len(data) > MaxBeaconSize {
		return b, fmt.Errorf("%d bytes: %w", len(data), ErrTooLarge)
	}
	if len(data) < 5 {
		return b, fmt.Errorf("%d bytes: %w", len(data), ErrShort)
	}
	if data[0] != magic0 || data[1] != magic1 || data[2] != magic2 || data[3] != magic3 {
		return b, ErrMagic
	}
	if data[4] != FormatVersion {
		return b, fmt.Errorf("version %d: %w", data[4], ErrVersion)
	}
	if len(data) < minBeaconLen {
		return b, fmt.Errorf("%d bytes: %w", len(data), ErrShort)
	}
	flags := data[5]
	if flags&^knownFlags != 0 {
		return b, fmt.Errorf("flags %#x: %w", flags, ErrMalformed)
	}
	b.Leaving = flags&flagLeaving != 0
	b.Instance = binary.BigEndian.Uint64(data[6:])
	b.Protocol = binary.BigEndian.Uint16(data[14:])
	b.Players = binary.BigEndian.Uint16(data[16:])
	b.Capacity = binary.BigEndian.Uint16(data[18:])
	b.Port = binary.BigEndian.Uint16(data[20:])
	rest := data[headerSize:]
	kind, rest, err := field(rest, MaxKind, "kind")
	if err != nil {
		return Beacon{}, err
	}
	name, rest, err := field(rest, MaxName, "name")
	if err != nil {
		return Beacon{}, err
	}
	info, rest, err := field(rest, MaxInfo, "info")
	if err != nil {
		return Beacon{}, err
	}
	if len(rest) != 0 {
		return Beacon{}, fmt.Errorf("%d bytes after the info field: %w", len(rest), ErrMalformed)
	}
	b.Kind, b.Name = string(kind), string(name)
	if len(info) > 0 {
		b.Info = append([]byte(nil), info...)
	}
	if err := b.Validate(); err != nil {
		return Beacon{}, err
	}
	return b, nil
}

// field reads one length-prefixed field of at most max bytes.
func field(b []byte, max int, what string) (val, rest []byte, err error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("no %s length: %w", what, ErrShort)
	}
	n := int(b[0])
	if n > max {
		return nil, nil, fmt.Errorf("%s length %d, limit %d: %w", what, n, max, ErrTooLarge)
	}
	if len(b) < 1+n {
		return nil, nil, fmt.Errorf("%s length %d, %d bytes left: %w", what, n, len(b)-1, ErrShort)
	}
	return b[1 : 1+n], b[1+n:], nil
}

func validKind(s string) bool {
	for i := 0; i < len(s); i++ {
		if !kindByte(s[i]) {
			return false
		}
	}
	return true
}

// kindByte reports whether c may appear in a beacon's kind: an ASCII
// letter or digit, '.', '_' or '-'.
func kindByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

func validName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
