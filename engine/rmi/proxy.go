package rmi

import (
	"fmt"
	"sync/atomic"

	"github.com/skein-dev/skein/engine/net"
)

// Sender is what a proxy sends frames through. *net.Host satisfies it.
//
// Send must not keep a reference to data after it returns (it copies or seals
// the bytes first): proxies reuse the buffer at once. It is called from
// whichever goroutine calls the proxy method.
type Sender interface {
	Send(to net.HostID, d net.Delivery, data []byte) error
}

// ContextSender is an optional extension of Sender for transports that
// understand the whole Context (priority, compression, encrypted-only). A
// Proxy whose Sender also implements ContextSender calls SendContext instead
// of Send.
type ContextSender interface {
	SendContext(to net.HostID, ctx Context, data []byte) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(to net.HostID, d net.Delivery, data []byte) error

// Send calls f.
func (f SenderFunc) Send(to net.HostID, d net.Delivery, data []byte) error { return f(to, d, data) }

// Proxy is the runtime half of every generated proxy: it hands finished frames
// to a Sender and counts them. Proxies are safe for concurrent use if their
// Sender is. Any number of proxies may share one Sender.
type Proxy struct {
	sender  Sender
	csender ContextSender
	errors  atomic.Uint64
}

// NewProxy returns a Proxy that sends through s.
func NewProxy(s Sender) *Proxy {
	p := &Proxy{sender: s}
	p.csender, _ = s.(ContextSender)
	return p
}

// Sender returns the Sender p sends through.
func (p *Proxy) Sender() Sender { return p.sender }

// ProxyStats counts what went wrong in a Proxy. Frames and bytes sent are
// counted by the host, per link; the proxy's success path stays free of
// shared atomic writes.
type ProxyStats struct {
	// Errors is the number of calls that failed to encode or send.
	Errors uint64
}

// Stats returns p's counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{Errors: p.errors.Load()}
}

// Send sends the frame in e (built with StartCall) to host to with context
// ctx, then releases e with PutEncoder. name ("Global.Method") labels errors.
// A failure is a *CallError wrapping ErrEncode, or ErrSend and the Sender's
// error.
func (p *Proxy) Send(to net.HostID, ctx Context, e *Encoder, name string) error {
	if err := e.Err(); err != nil {
		id, _, _ := ParseHeader(e.buf)
		PutEncoder(e)
		p.errors.Add(1)
		return &CallError{ID: id, Name: name, Peer: to, Sending: true, Err: err}
	}
	var err error
	if p.csender != nil {
		err = p.csender.SendContext(to, ctx, e.buf)
	} else {
		err = p.sender.Send(to, ctx.Delivery(), e.buf)
	}
	if err != nil {
		id, _, _ := ParseHeader(e.buf)
		PutEncoder(e)
		p.errors.Add(1)
		return &CallError{ID: id, Name: name, Peer: to, Sending: true, Err: fmt.Errorf("%w: %w", ErrSend, err)}
	}
	PutEncoder(e)
	return nil
}
