package net

// SetHelloVersion makes Dial announce another protocol version, for tests of
// the version refusal. It returns a function that restores the real one.
func SetHelloVersion(v uint16) (restore func()) {
	helloVersion = v
	return func() { helloVersion = ProtocolVersion }
}

// ListenWithTCP starts a server and a TCP listener on its port number.
var ListenWithTCP = listenWithTCP
