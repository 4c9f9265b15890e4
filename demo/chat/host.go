package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-dev/skein/engine/lan"
	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/sync"
)

// host is the chat host: a Skein server in this process that puts every
// client that connects in one P2P group, and a LAN advertiser that tells
// others where to connect. The host's own player is just the first client.
type host struct {
	ctx   context.Context
	srv   *sync.Server
	name  string
	scope lan.Scope
	port  uint16 // of LAN beacons
	log   hclog.Logger
	calls *rmi.Dispatcher

	group net.HostID      // created when the first client connects
	ad    *lan.Advertiser // advertising starts with the group
}

// startHost starts the server: on all interfaces for the LAN, on 127.0.0.1
// for -loopback.
func startHost(ctx context.Context, o options, scope lan.Scope, log hclog.Logger) (*host, error) {
	addr := "0.0.0.0:0"
	if scope == lan.ScopeLoopback {
		addr = "127.0.0.1:0"
	}
	log = log.Named("host")
	srv, err := sync.ListenServer(addr, sync.ServerConfig{Logger: log})
	if err != nil {
		return nil, err
	}
	h := &host{ctx: ctx, srv: srv, name: o.name, scope: scope, port: o.lanPort, log: log, calls: rmi.NewDispatcher()}
	if err := h.calls.Attach(&ChatStub{Leave: h.onLeave}); err != nil {
		srv.Close()
		return nil, fmt.Errorf("chat: %w", err)
	}
	return h, nil
}

// addr is where this machine's clients reach the server.
func (h *host) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), h.srv.Host().LocalAddr().Port())
}

// handle takes one event of the server (on the chat's goroutine, like the
// client's events).
func (h *host) handle(e sync.Event) {
	switch e.Kind {
	case sync.EventConnected:
		if h.group == net.NoHost {
			// The first client is our own player: create the group with
			// it, then tell the LAN.
			g, err := h.srv.CreateGroup([]net.HostID{e.Peer}, []byte(chatKind))
			if err != nil {
				h.log.Error("create group", "error", err)
				return
			}
			h.group = g
			h.advertise()
			return
		}
		if len(h.srv.Members(h.group)) >= chatCapacity {
			if err := h.srv.Kick(e.Peer, "the chat is full"); err != nil {
				h.log.Debug("kick", "client", e.Peer, "error", err)
			}
			return
		}
		if err := h.srv.JoinGroup(h.group, e.Peer); err != nil {
			h.log.Warn("join group", "client", e.Peer, "error", err)
		}
		h.update()
	case sync.EventDisconnected:
		h.update() // the server took the client out of the group
	case sync.EventMessage:
		if _, err := h.calls.DispatchSyncEvent(e); err != nil {
			h.log.Debug("call dropped", "from", e.Peer, "error", err)
		}
	case sync.EventMemberJoin, sync.EventMemberLeave, sync.EventHostChange, sync.EventRelayStateChange,
		sync.EventNATType, sync.EventAway, sync.EventBack, sync.EventMemberAway, sync.EventMemberBack:
		// The host's player sees the group through its own client's
		// session; the server keeps only the count (update), and a
		// suspended member keeps its place until it leaves.
	}
}

// onLeave takes a member out of the group: everyone sees it leave, and
// the member then disconnects.
func (h *host) onLeave(info rmi.CallInfo) error {
	err := h.srv.LeaveGroup(h.group, info.From)
	h.update()
	return err
}

// advertise starts the LAN beacon: the name, the player count, and the
// port of the server (a beacon carries no address: browsers dial the
// address it came from).
func (h *host) advertise() {
	name := h.name
	for len(name) > lan.MaxName { // a 24-character name may be 96 bytes
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	ad, err := lan.Advertise(h.ctx, lan.AdvertiserConfig{Port: h.port, Scope: h.scope, Logger: h.log},
		lan.Beacon{Kind: chatKind, Name: name, Protocol: chatProtocol, Players: 1, Capacity: chatCapacity,
			Port: h.srv.Host().LocalAddr().Port(), Info: h.key()})
	if err != nil {
		h.log.Error("cannot advertise the chat: others will not find it", "error", err)
		return
	}
	h.ad = ad
}

// key returns the chat server's public key, as the beacon's Info carries
// it: a joiner pins it, so it reaches the server that announced the chat
// or fails (a beacon is not authenticated: this binds the join to the
// announcement, it does not prove who sent it).
func (h *host) key() []byte {
	k := h.srv.Host().Identity().Current()
	return k[:]
}

// update puts the player count in the beacon.
func (h *host) update() {
	if h.ad != nil {
		n := uint16(len(h.srv.Members(h.group)))
		if err := h.ad.Update(func(b *lan.Beacon) { b.Players = n }); err != nil {
			h.log.Debug("LAN beacon keeps its player count", "error", err)
		}
	}
}

// instance names our beacon (0 before advertising).
func (h *host) instance() uint64 {
	if h == nil || h.ad == nil {
		return 0
	}
	return h.ad.Instance()
}

// close says goodbye on the LAN first (so nobody tries to join a chat that
// is going), then shuts the server down: its clients see the host leave.
func (h *host) close() {
	if h == nil {
		return
	}
	if h.ad != nil {
		h.ad.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.log.Debug("shutdown", "error", err)
	}
}
