package rmi

// CallID numbers a remote method. rmigen gives the methods of a global
// consecutive IDs starting at the global's first ID (or the explicit "= N"
// of a method). ID 0 is reserved.
type CallID uint16

// HeaderSize is the size of a frame's call ID. A frame is:
//
//	+--------+--------+------------------------------------+
//	| call ID (uint16, big endian)  | msgpack array of args |
//	+--------+--------+------------------------------------+
//
// The ID is a fixed two bytes rather than a varint so that a router can read
// it without decoding, and because games want every call to cost the same
// header; rmigen rejects IDs outside 1..65535. The arguments are one msgpack
// array with one element per parameter, in declaration order, so any msgpack
// library can read and write frames (structs declared in the IDL are msgpack
// arrays of their fields). A call with no parameters is the ID followed by
// 0x90 (an empty array). Nothing follows the array.
const HeaderSize = 2

// PutHeader writes id into the first HeaderSize bytes of frame.
func PutHeader(frame []byte, id CallID) {
	_ = frame[1]
	frame[0] = byte(id >> 8)
	frame[1] = byte(id)
}

// ParseHeader returns the call ID of frame and the encoded arguments that
// follow it. It fails with ErrShortFrame if frame is shorter than HeaderSize.
func ParseHeader(frame []byte) (id CallID, args []byte, err error) {
	if len(frame) < HeaderSize {
		return 0, nil, ErrShortFrame
	}
	return CallID(frame[0])<<8 | CallID(frame[1]), frame[HeaderSize:], nil
}
