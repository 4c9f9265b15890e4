package rmi

import (
	"strconv"
	"strings"

	"github.com/skein-dev/skein/engine/net"
)

// Priority orders outgoing calls when a link is congested. The zero value is
// PriorityNormal.
type Priority int8

const (
	// PriorityLow is for traffic that may wait (statistics, cosmetic effects).
	PriorityLow Priority = -1
	// PriorityNormal is the default priority.
	PriorityNormal Priority = 0
	// PriorityHigh is for traffic that should overtake normal calls (hits,
	// deaths, round changes).
	PriorityHigh Priority = 1
)

// String returns "low", "normal", "high" or the number.
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityNormal:
		return "normal"
	case PriorityHigh:
		return "high"
	}
	return strconv.Itoa(int(p))
}

// Context says how a call travels, like RmiContext in IDL-based C++ engines.
// Use the ready-made values Reliable and Unreliable and refine them with the
// With* methods:
//
//	proxy.Player_Move(group, rmi.Unreliable.OnChannel(2), pos)
//	proxy.Chat(net.ServerID, rmi.Reliable.WithPriority(rmi.PriorityLow), text)
//
// Reliable and Channel map onto net.Delivery and are honoured by every
// Sender. Priority, Compress and EncryptedOnly are hints carried to a Sender
// that also implements ContextSender; a plain Sender (such as *net.Host, which
// seals every datagram anyway) ignores them.
type Context struct {
	// Reliable selects the reliable ordered stream. When false the call is an
	// unreliable sequenced datagram: a newer call on the same channel makes an
	// older one that arrives late obsolete, and it is dropped.
	Reliable bool
	// Channel numbers the unreliable sequenced channel (0-255). Ignored when
	// Reliable is true.
	Channel uint8
	// Priority orders outgoing traffic on a congested link (a hint).
	Priority Priority
	// Compress asks the transport to compress the frame if that makes it
	// smaller (a hint).
	Compress bool
	// EncryptedOnly asks the transport to refuse, rather than send in clear,
	// if it cannot seal the frame. Skein seals every datagram, so today this
	// always holds; it is kept so code ported from other engines states its
	// intent.
	EncryptedOnly bool
}

var (
	// Reliable sends the call on the reliable ordered stream.
	Reliable = Context{Reliable: true}
	// Unreliable sends the call as an unreliable sequenced datagram on
	// channel 0.
	Unreliable = Context{}
)

// ContextOf returns the Context that a message received with delivery d was
// sent with, as far as the receiver can tell (Reliable and Channel).
func ContextOf(d net.Delivery) Context {
	return Context{Reliable: d.Reliable, Channel: d.Channel}
}

// Delivery returns the net.Delivery that carries calls sent with c.
func (c Context) Delivery() net.Delivery {
	if c.Reliable {
		return net.Delivery{Reliable: true}
	}
	return net.Delivery{Channel: c.Channel}
}

// OnChannel returns c on unreliable channel ch (see Context.Channel).
func (c Context) OnChannel(ch uint8) Context { c.Channel = ch; return c }

// WithPriority returns c with priority p.
func (c Context) WithPriority(p Priority) Context { c.Priority = p; return c }

// WithCompression returns c with Compress set.
func (c Context) WithCompression() Context { c.Compress = true; return c }

// RequireEncryption returns c with EncryptedOnly set.
func (c Context) RequireEncryption() Context { c.EncryptedOnly = true; return c }

// String describes c for logs, for example "reliable" or
// "unreliable/ch2/high/compressed".
func (c Context) String() string {
	var b strings.Builder
	if c.Reliable {
		b.WriteString("reliable")
	} else {
		b.WriteString("unreliable")
		if c.Channel != 0 {
			b.WriteString("/ch")
			b.WriteString(strconv.Itoa(int(c.Channel)))
		}
	}
	if c.Priority != PriorityNormal {
		b.WriteByte('/')
		b.WriteString(c.Priority.String())
	}
	if c.Compress {
		b.WriteString("/compressed")
	}
	if c.EncryptedOnly {
		b.WriteString("/encrypted-only")
	}
	return b.String()
}
