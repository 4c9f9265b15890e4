package lan

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleBeacon() Beacon {
	return Beacon{
		Instance: 0x0102030405060708,
		Kind:     "skein-chat",
		Name:     "Ana's chat ☕",
		Protocol: 1,
		Players:  3,
		Capacity: 64,
		Port:     40123,
		Info:     []byte{0xde, 0xad},
	}
}

func TestBeaconRoundTrip(t *testing.T) {
	full := Beacon{
		Instance: ^uint64(0),
		Kind:     strings.Repeat("k", MaxKind),
		Name:     strings.Repeat("é", MaxName/2),
		Protocol: 0xffff, Players: 0xffff, Capacity: 0xffff, Port: 0xffff,
		Info:    bytes.Repeat([]byte{0xff}, MaxInfo),
		Leaving: true,
	}
	for _, b := range []Beacon{sampleBeacon(), {Port: 1}, full} {
		data, err := AppendBeacon(nil, &b)
		if err != nil {
			t.Fatalf("encode %+v: %v", b, err)
		}
		if len(data) > MaxBeaconSize {
			t.Errorf("%d bytes, more than MaxBeaconSize %d", len(data), MaxBeaconSize)
		}
		got, err := DecodeBeacon(data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
		}
	}
	data, _ := AppendBeacon(nil, &full)
	if len(data) != MaxBeaconSize {
		t.Errorf("the largest beacon is %d bytes, MaxBeaconSize says %d", len(data), MaxBeaconSize)
	}
}

// TestBeaconLayout pins the wire format documented in beacon.go.
func TestBeaconLayout(t *testing.T) {
	b := Beacon{Instance: 0x1122334455667788, Kind: "k", Name: "N", Protocol: 0x0102, Players: 3, Capacity: 0x0405, Port: 0x0607, Info: []byte{9}, Leaving: true}
	got, err := AppendBeacon(nil, &b)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		'S', 'K', 'L', 'N', 1, 1,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x01, 0x02, 0x00, 0x03, 0x04, 0x05, 0x06, 0x07,
		1, 'k', 1, 'N', 1, 9,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding\n got % x\nwant % x", got, want)
	}
}

func TestDecodeBeaconErrors(t *testing.T) {
	good, err := AppendBeacon(nil, &Beacon{Kind: "arena", Name: "x", Port: 7777})
	if err != nil {
		t.Fatal(err)
	}
	with := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	kindAt := headerSize
	nameAt := kindAt + 1 + len("arena")
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"four bytes", []byte("SKLN"), ErrShort},
		{"not a beacon", []byte("GET / HTTP/1.1\r\n\r\n"), ErrMagic},
		{"newer version", with(4, 2), ErrVersion},
		{"version zero", with(4, 0), ErrVersion},
		{"header only", good[:headerSize], ErrShort},
		{"unknown flag", with(5, 0x80), ErrMalformed},
		{"port zero", func() []byte { b := with(20, 0); b[21] = 0; return b }(), ErrMalformed},
		{"kind too long", with(kindAt, MaxKind+1), ErrTooLarge},
		{"kind past the end", with(kindAt, 200), ErrTooLarge},
		{"kind with a space", with(kindAt+1, ' '), ErrMalformed},
		{"name with a control character", with(nameAt+1, 0x1b), ErrMalformed},
		{"name with invalid UTF-8", with(nameAt+1, 0xff), ErrMalformed},
		{"name cut short", good[:nameAt+1], ErrShort},
		{"no info length", good[:len(good)-1], ErrShort},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"oversized", make([]byte, MaxBeaconSize+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBeacon(tt.data)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBeaconValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Beacon)
		want error
	}{
		{"name too long", func(b *Beacon) { b.Name = strings.Repeat("x", MaxName+1) }, ErrTooLarge},
		{"kind too long", func(b *Beacon) { b.Kind = strings.Repeat("x", MaxKind+1) }, ErrTooLarge},
		{"info too long", func(b *Beacon) { b.Info = make([]byte, MaxInfo+1) }, ErrTooLarge},
		{"kind with a slash", func(b *Beacon) { b.Kind = "a/b" }, ErrMalformed},
		{"name with a newline", func(b *Beacon) { b.Name = "a\nb" }, ErrMalformed},
		{"name with C1 control", func(b *Beacon) { b.Name = "a\u0085b" }, ErrMalformed},
		{"no port", func(b *Beacon) { b.Port = 0 }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := sampleBeacon()
			tt.edit(&b)
			if _, err := AppendBeacon(nil, &b); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeBeaconDoesNotAlias(t *testing.T) {
	sample := sampleBeacon()
	data, _ := AppendBeacon(nil, &sample)
	b, err := DecodeBeacon(data)
	if err != nil {
		t.Fatal(err)
	}
	clear(data)
	if want := sampleBeacon(); !reflect.DeepEqual(b, want) {
		t.Errorf("decoded beacon changed with its input: %+v", b)
	}
}

// FuzzDecodeBeacon: decoding never panics, and whatever decodes encodes back
// to the very same bytes (so no two encodings mean one beacon, and nothing
// is silently ignored).
func FuzzDecodeBeacon(f *testing.F) {
	for _, b := range []Beacon{sampleBeacon(), {Port: 1}, {Kind: "arena", Name: "Arena", Players: 1, Capacity: 8, Port: 7777, Leaving: true}} {
		data, err := AppendBeacon(nil, &b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("SKLN\x02"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBeacon(data)
		if err != nil {
			if b.Instance != 0 || b.Name != "" || b.Port != 0 {
				t.Fatalf("error %v with a non-zero beacon %+v", err, b)
			}
			return
		}
		again, err := AppendBeacon(nil, &b)
		if err != nil {
			t.Fatalf("decoded beacon does not encode: %v (%+v)", err, b)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoded beacon differs:\n got % x\nwant % x", again, data)
		}
	})
}
