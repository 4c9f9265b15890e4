package sync_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/net/vnet"
	"github.com/skein-dev/skein/engine/sync"
)

// nameHook names a client by its credentials.
func nameHook(_ context.Context, r *net.AuthRequest) (net.AuthResult, error) {
	if len(r.Credentials) == 0 {
		return net.AuthResult{}, net.ErrUnauthorized
	}
	return net.AuthResult{User: string(r.Credentials)}, nil
}

// TestUsersInGroups: the server knows each client's user (its events and
// User), and group members learn their peers' user IDs only when the
// server shares them.
func TestUsersInGroups(t *testing.T) {
	for _, share := range []bool{true, false} {
		t.Run(fmt.Sprintf("share=%v", share), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := vnet.New(3)
				defer nw.Close()
				sc, _ := nw.Listen(srvAddr)
				srv, err := sync.NewServer(sc, sync.ServerConfig{Net: net.Config{Authenticate: nameHook}, ShareUsers: share})
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				names := []string{"alice", "bob"}
				var cs []*sync.Client
				for i, name := range names {
					conn, err := nw.Listen(netip.MustParseAddrPort(fmt.Sprintf("10.0.1.%d:5000", i+1)))
					if err != nil {
						t.Fatal(err)
					}
					c, err := sync.NewClient(conn, sync.ClientConfig{Credentials: []byte(name)})
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					if err := c.Connect(t.Context(), srvAddr); err != nil {
						t.Fatal(err)
					}
					next(t, c, sync.EventConnected)
					if e := next(t, srv, sync.EventConnected); e.User != name || e.Peer != c.ID() {
						t.Fatalf("server event %+v", e)
					}
					if u, ok := srv.User(c.ID()); !ok || u.ID != name {
						t.Fatalf("User(%v) = %+v %v", c.ID(), u, ok)
					}
					cs = append(cs, c)
				}
				if _, err := srv.CreateGroup([]net.HostID{cs[0].ID(), cs[1].ID()}, nil); err != nil {
					t.Fatal(err)
				}
				for i, c := range cs {
					seen := map[net.HostID]string{}
					for _, e := range settle(c, sync.EventMemberJoin) {
						seen[e.Member] = e.User
					}
					for j, o := range cs {
						want := names[j]
						if !share {
							want = ""
						}
						if got, ok := seen[o.ID()]; !ok || got != want {
							t.Fatalf("client %d: join of %v named %q (%v), want %q", i, o.ID(), got, ok, want)
						}
					}
				}
				// A client without credentials is refused before it
				// gets anything.
				conn, _ := nw.Listen(netip.MustParseAddrPort("10.0.1.9:5000"))
				c, err := sync.NewClient(conn, sync.ClientConfig{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := c.Connect(t.Context(), srvAddr); !errors.Is(err, net.ErrUnauthorized) {
					t.Fatalf("anonymous Connect = %v", err)
				}
				cs[1].Close()
				if e := next(t, srv, sync.EventDisconnected); e.User != "bob" {
					t.Fatalf("server event %+v", e)
				}
			})
		})
	}
}
