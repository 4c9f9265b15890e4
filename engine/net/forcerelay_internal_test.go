package net

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// seedForceFrames are force notices, real and malformed.
func seedForceFrames() [][]byte {
	notice := func(on byte, seq uint32) []byte {
		b := []byte{on, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], seq)
		return appendFrame(nil, frameForceRelay, b)
	}
	return [][]byte{
		notice(1, 1),
		notice(0, 2),
		append(notice(1, 3), notice(0, 3)...),
		append(notice(0, 5), notice(1, 4)...),
		notice(1, 0xffffffff),
		notice(2, 6),
		appendFrame(nil, frameForceRelay, []byte{1, 0, 0}),
		appendFrame(nil, frameForceRelay, make([]byte, 9)),
	}
}

// forcePeer is a client (of a fuzzPair) punched to a peer, and the peer's
// side of the link, to seal what the peer sends.
type forcePeer struct {
	p      *fuzzPair
	mine   *link // the client's link to the peer
	theirs *link // the peer's side, for sealing only
}

const forcePeerID HostID = 5000

var forcePeerAddr = netip.MustParseAddrPort("10.0.0.3:1")

func newForcePeer(tb testing.TB) *forcePeer {
	tb.Helper()
	fp := &forcePeer{p: newFuzzPair(tb)}
	keys := NewKeys()
	if err := fp.p.cli.AddPeer(forcePeerID, keys, fp.p.cli.RelayPath(forcePeerID)); err != nil {
		tb.Fatal(err)
	}
	fp.mine = fp.p.cli.link(forcePeerID)
	var err error
	if fp.theirs, err = newLink(fp.p.cli, fp.p.cli.ID(), forcePeerID, keys.Swap(), fp.p.cli.DirectPath(fp.p.cliAddr), time.Now()); err != nil {
		tb.Fatal(err)
	}
	// The pair is punched: the client reaches the peer directly.
	l := fp.mine
	l.mu.Lock()
	l.punch = &punchState{relay: l.path, direct: forcePeerAddr, lastAck: time.Now(), backoff: time.Second}
	l.path = fp.p.cli.DirectPath(forcePeerAddr)
	l.mu.Unlock()
	return fp
}

// feed seals plain as the peer and hands it to the client, from the peer's
// direct address.
func (fp *forcePeer) feed(plain []byte) {
	b, pn := fp.theirs.startDatagram()
	fp.p.cli.demux(fp.theirs.sealDatagram(append(b, plain...), pn), forcePeerAddr, time.Now(), new(rxScratch), fp.p.cli.conn)
}

// state returns whether the client holds that the peer forced the relay,
// and whether its path to the peer is the relay.
func (fp *forcePeer) state() (peerForced, relayed bool) {
	fp.mine.mu.Lock()
	defer fp.mine.mu.Unlock()
	return fp.mine.punch.peerForced, fp.mine.path.Relayed()
}

// A force notice moves the client onto the relay; a copy or an older
// notice changes nothing; a newer release lets it go.
func TestForceNoticeApplies(t *testing.T) {
	fp := newForcePeer(t)
	defer fp.p.close()
	seeds := seedForceFrames()
	steps := []struct {
		plain               []byte
		peerForced, relayed bool
	}{
		{seeds[0], true, true},  // forced, seq 1
		{seeds[0], true, true},  // a copy
		{seeds[1], false, true}, // released, seq 2: back to punching
		{seeds[0], false, true}, // seq 1 again: too old
		{seeds[2], true, true},  // forced and released, both seq 3: the first counts
		{seeds[5], true, true},  // on = 2: malformed
	}
	for i, s := range steps {
		fp.feed(s.plain)
		if pf, rel := fp.state(); pf != s.peerForced || rel != s.relayed {
			t.Fatalf("step %d: peer forced %v relayed %v, want %v %v", i, pf, rel, s.peerForced, s.relayed)
		}
	}
	if d := fp.p.cli.Stats().Drops; d[DropMalformed] == 0 {
		t.Fatalf("malformed notice not counted: %v", d)
	}
}

// FuzzForceRelayFrame seals arbitrary frames as a peer of a client, with
// the peer's keys, and feeds them to the client from the peer's direct
// address: nothing panics, and whenever the client holds that the peer
// forced the relay, its link to the peer is on the relay path.
func FuzzForceRelayFrame(f *testing.F) {
	fp := newForcePeer(f)
	defer func() { fp.p.close() }()
	for _, s := range seedForceFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		if fp.p.cli.link(forcePeerID) != fp.mine || fp.p.cli.link(ServerID) == nil {
			// A close frame ended a link: start again.
			fp.p.close()
			fp = newForcePeer(t)
		}
		if len(plain) > maxFramesPayload {
			plain = plain[:maxFramesPayload]
		}
		fp.feed(plain)
		if pf, rel := fp.state(); pf && !rel {
			t.Fatal("the peer forced the relay, but the path is direct")
		}
	})
}
