package rmi_test

import (
	"errors"
	"testing"
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/engine/rmi/internal/testidl"
	"github.com/skein-dev/skein/engine/sync"
)

// TestDispatchSyncEvent dispatches the events of engine/sync as DispatchEvent
// does those of engine/net: a message reaches its stub with the same
// CallInfo plus the group it was sent to, other events are not messages,
// and a disconnection ends the requests pending on its peer.
func TestDispatchSyncEvent(t *testing.T) {
	var got []rmi.CallInfo
	d := rmi.NewDispatcher()
	if err := d.Attach(&testidl.ServiceStub{Note: func(info rmi.CallInfo, _ string) error {
		got = append(got, info)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	var c captureSender
	if err := testidl.NewServiceProxy(&c).Note(1, rmi.Unreliable, "hi"); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	ge := sync.Event{Kind: sync.EventMessage, Peer: 1002, Group: 4000, Delivery: net.Delivery{Channel: 3}, Data: c.last, Relayed: true, Received: at}
	ne := net.Event{Kind: net.EventMessage, Peer: 1002, Delivery: net.Delivery{Channel: 3}, Data: c.last, Relayed: true, Received: at}
	if isMsg, err := d.DispatchSyncEvent(ge); !isMsg || err != nil {
		t.Fatalf("group message: %v, %v", isMsg, err)
	}
	if isMsg, err := d.DispatchEvent(ne); !isMsg || err != nil {
		t.Fatalf("net message: %v, %v", isMsg, err)
	}
	want := rmi.CallInfo{From: 1002, Relayed: true, Context: rmi.Unreliable.OnChannel(3), Received: at, Group: 4000}
	if len(got) != 2 || got[0] != want {
		t.Fatalf("calls %+v, want first %+v", got, want)
	}
	want.Group = net.NoHost
	if got[1] != want {
		t.Errorf("net event's call %+v, want %+v", got[1], want)
	}
	if isMsg, _ := d.DispatchSyncEvent(sync.Event{Kind: sync.EventMemberJoin, Group: 4000, Member: 1003}); isMsg {
		t.Error("a member event dispatched as a message")
	}

	// A disconnection ends the pending requests to that peer.
	r := rmi.NewRequests(&discard{}, rmi.RequestConfig{})
	d.SetRequests(r)
	var ended error
	if _, err := testidl.NewServiceProxy(r).Double(net.ServerID, rmi.Reliable, 1, testidl.CodeOk, func(_ int64, _ testidl.Code, err error) { ended = err }); err != nil {
		t.Fatal(err)
	}
	if isMsg, _ := d.DispatchSyncEvent(sync.Event{Kind: sync.EventDisconnected, Peer: net.ServerID}); isMsg || !errors.Is(ended, rmi.ErrLinkLost) {
		t.Errorf("after the disconnection: message %v, pending call ended with %v", isMsg, ended)
	}
}
