package net

// Delivery says how a message travels on a link.
type Delivery struct {
	// Reliable selects the reliable ordered stream (KCP). When false the
	// message is an unreliable sequenced datagram on Channel: the receiver
	// drops anything older than the newest it has seen on that channel.
	Reliable bool
	// Channel numbers the unreliable sequenced channel (0-255). Each channel
	// has its own sequence, so a stream of positions on one channel does not
	// make chat on another obsolete. Ignored when Reliable is true.
	Channel uint8
}

var (
	// Reliable is the reliable ordered stream.
	Reliable = Delivery{Reliable: true}
	// Unreliable is unreliable sequenced channel 0.
	Unreliable = Delivery{}
)

// OnChannel returns d on unreliable channel ch.
func (d Delivery) OnChannel(ch uint8) Delivery { d.Channel = ch; return d }
