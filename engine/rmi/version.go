package rmi

// Version guards: generated code states which rmigen output version it is
// with lines such as
//
//	_ = rmi.EnforceVersion(1 - rmi.MinVersion) // rmigen output older than engine/rmi supports: regenerate
//	_ = rmi.EnforceVersion(rmi.MaxVersion - 1) // rmigen output newer than engine/rmi: update Skein
//
// If the generated file is older than MinVersion or newer than MaxVersion,
// one of the constant expressions is negative and the file fails to compile
// with "constant -N overflows rmi.EnforceVersion" (or "cannot use ... (overflows)")
// on the line whose comment says what to do. This is the protobuf-go
// protoimpl.EnforceVersion technique.
const (
	// GenVersion is the output version rmigen writes into generated code.
	// Version 2 added enums (EnumError, EnumString) and request/response
	// calls (Requests, StartRequest, Proxy.Request, RequestStub). Version 3
	// moved the shape every generated method repeated into helpers
	// (Decoder.StartArgs, StartResults, ReplyError, ReplyNone, NoResults, Wait,
	// Later.Answer, DecodeValueAs).
	GenVersion = 3
	// MinVersion is the oldest generated-code version this runtime supports.
	MinVersion = 1
	// MaxVersion is the newest generated-code version this runtime supports.
	MaxVersion = 3
)

// EnforceVersion is used by generated code to fail compilation when the
// generated file and this runtime are incompatible (see GenVersion). Its
// underlying type is unsigned so that a negative constant overflows.
type EnforceVersion uint
