package net

import "testing"

// BenchmarkSealOpen seals and opens a 64-byte payload behind an 11-byte
// header, as every small datagram is, with each cipher a link can
// negotiate:
//
//	go test -run '^$' -bench SealOpen -count 6 ./engine/net/
func BenchmarkSealOpen(b *testing.B) {
	for _, c := range []Cipher{AES256GCM, ChaCha20Poly1305} {
		b.Run(c.String(), func(b *testing.B) {
			k := NewKeys()
			k.Cipher = c
			s, err := newSealer(k.Swap()) // opens what r seals
			if err != nil {
				b.Fatal(err)
			}
			r, err := newSealer(k)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, bufSize)
			payload := make([]byte, 64)
			const header = 11
			var nonce [nonceSize]byte
			for pn := uint64(1); b.Loop(); pn++ {
				d := r.seal(buf[:header], pn, payload, nonce[:])
				if _, err := s.open(d, pn, header, nonce[:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
