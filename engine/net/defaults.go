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
	// DefaultEventQueueBytes is the default of Config.EventQueueBytes
	// (bytes of messages waiting for the application), and of
	// engine/sync's queue's: 16 MiB, half of the default
	// HostReceiveBudget. Without it the count alone let 8192 reliable
	// messages of MaxReliable bytes, 2 GiB, wait in each queue.
	DefaultEventQueueBytes = 16 << 20
	// MinEventQueueBytes is the least Config.EventQueueBytes: two
	// messages of MaxReliable, so that the largest message always fits
	// once the queue has drained to half its budget.
	MinEventQueueBytes = 2 * MaxReliable
	// DefaultSendQueue is the default of Config.SendQueue (reliable
	// segments waiting or in flight on one link).
	DefaultSendQueue = 8192
)
