package net

import (
	"testing"
	"time"
)

// FuzzRelayedFrames seals arbitrary frames, in either packet-number space,
// with the keys of a peer the client reaches through the relay, and hands
// them to the client as the server forwards them (from the server's
// address, the sender's HostID in the header): the relayed case of every
// frame handler. Nothing may panic, no relayed datagram may move the
// link off the relay, and path, punch, relay and fan-out frames that came
// relayed are dropped and counted (DropUnexpected).
func FuzzRelayedFrames(f *testing.F) {
	p := newFuzzPair(f)
	defer func() { p.close() }()
	for _, s := range seedFrames() {
		f.Add(s, false)
	}
	for _, s := range seedPathFrames() {
		f.Add(s, true)
	}
	f.Add(appendFrame(nil, frameRelay, []byte{0xe8, 3, 0, 0, 1, 0, 0x10}), false)
	for _, s := range seedForceFrames() {
		f.Add(s, false) // a force notice counts through the relay
	}
	const peer = FirstClientID + 7
	keys := NewKeys()
	var from *link // the peer's end, sealing what it sends
	add := func(tb testing.TB) {
		tb.Helper()
		if err := p.cli.AddPeer(peer, keys, p.cli.RelayPath(peer)); err != nil {
			tb.Fatal(err)
		}
		l, err := newLink(p.srv, p.cli.ID(), peer, keys.Swap(), p.srv.RelayPath(p.cli.ID()), time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		from = l
	}
	add(f)
	f.Fuzz(func(t *testing.T, plain []byte, probe bool) {
		if p.cli.link(ServerID) == nil {
			p.close()
			p = newFuzzPair(t)
			add(t)
		} else if p.cli.link(peer) == nil {
			add(t) // a close frame ended the peer's link
		}
		l := p.cli.link(peer)
		if len(plain) > maxFramesPayload {
			plain = plain[:maxFramesPayload]
		}
		b, pn := from.startDatagram()
		if probe {
			b, pn = from.startProbeDatagram()
		}
		b = from.sealDatagram(append(b, plain...), pn)
		unexpected := l.drops[DropUnexpected].Load()

		p.cli.demux(b, p.srvAddr, time.Now(), new(rxScratch), p.cli.conn)

		l.mu.Lock()
		_, relayed := l.path.(*relayPath)
		l.mu.Unlock()
		if !relayed {
			t.Fatalf("a relayed datagram moved the link to %v", pathString(l.path))
		}
		frames, err := parseFrames(plain, nil)
		if err != nil || !framesFitSpace(frames, probe) {
			return
		}
		for _, fr := range frames {
			switch fr.Type {
			case framePunch, framePathChallenge, framePathResponse, frameRelay, frameFanout, frameFanned, frameNAT:
				if l.drops[DropUnexpected].Load() == unexpected {
					t.Fatalf("relayed frame %#x taken, not counted as unexpected", fr.Type)
				}
				return
			case frameKCP, frameUnreliable, framePing, framePong, frameClose, frameForceRelay:
				// Allowed through the relay.
			}
		}
	})
}
