package rmi_test

import (
	"github.com/skein-dev/skein/engine/net"
)

// captureSender keeps a copy of the last frame sent.
type captureSender struct {
	last []byte
	to   net.HostID
	d    net.Delivery
}

func (c *captureSender) Send(to net.HostID, d net.Delivery, data []byte) error {
	c.last = append(c.last[:0:0], data...)
	c.to, c.d = to, d
	return nil
}
