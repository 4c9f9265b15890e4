package rmi

import (
	"errors"
	"strconv"
)

// ErrEnumValue means a decoded enum value is not one the IDL declares. The
// decoder records it wrapped in ErrDecode (see EnumError), so a Dispatcher
// counts the frame as malformed and never hands the value to a stub.
var ErrEnumValue = errors.New("rmi: value not declared in enum")

// EnumError is the error the generated DecodeRMI method of an IDL enum
// records when the frame holds a value the enum does not declare. It wraps
// ErrEnumValue.
type EnumError struct {
	// Type is the enum's name in the IDL.
	Type string
	// Value is the value received; for an enum on an unsigned type it holds
	// the value's bits (uint64(Value) is the number).
	Value int64
	// Unsigned reports that the enum's underlying type is unsigned.
	Unsigned bool
}

// Error returns "rmi: value 7 not declared in enum ResultCode".
func (e *EnumError) Error() string {
	return "rmi: value " + formatEnumValue(e.Value, e.Unsigned) + " not declared in enum " + e.Type
}

// Unwrap returns ErrEnumValue.
func (e *EnumError) Unwrap() error { return ErrEnumValue }

// EnumString returns "Type(7)", the String of an enum value the IDL does not
// declare. Generated String methods call it; value holds the bits of the
// value and unsigned says how to read them, as in EnumError.
func EnumString(typ string, value int64, unsigned bool) string {
	return typ + "(" + formatEnumValue(value, unsigned) + ")"
}

func formatEnumValue(v int64, unsigned bool) string {
	if unsigned {
		return strconv.FormatUint(uint64(v), 10)
	}
	return strconv.FormatInt(v, 10)
}
