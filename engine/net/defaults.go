package net

// Defaults of the bounds in Config, exported so that the layers above
// (engine/sync, the match server) default to the same figures instead of
// retyping them. A zero field in a config means its default.
const (
	// DefaultMaxLinks is the default of Config.MaxLinks and
	// TCPConfig.MaxConns (the clients a server keeps), and of the
	// bounds on clients above it: engine/sync's Server and the match
	// server's MaxClients.
	DefaultMaxLinks = 4096
	// DefaultEventQueue is the default of Config.EventQueue (messages
	// waiting for the application), and of engine/sync's EventQueue.
	DefaultEventQueue = 8192
	// DefaultSendQueue is the default of Config.SendQueue (reliable
	// segments waiting or in flight on one link).
	DefaultSendQueue = 8192
)
