package net

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestProtocolDocSizes holds docs/PROTOCOL.md to the code: every version
// number and size it states is checked against the constants and encoders
// of wire.go (a drifted document fails here, not at an interoperating
// implementer).
func TestProtocolDocSizes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(string(raw)), " ") // line breaks fall anywhere
	// num returns the numbers the pattern's groups capture; the pattern
	// must occur in the document.
	num := func(pattern string) []int {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(doc)
		if m == nil {
			t.Fatalf("PROTOCOL.md no longer says %q", pattern)
		}
		var out []int
		for _, s := range m[1:] {
			v, err := strconv.ParseInt(s, 0, 64)
			if err != nil {
				t.Fatalf("%q: %v", pattern, err)
			}
			out = append(out, int(v))
		}
		return out
	}
	check := func(what string, doc, code int) {
		t.Helper()
		if doc != code {
			t.Errorf("PROTOCOL.md: %s is %d, the code has %d", what, doc, code)
		}
	}

	check("title version", num(`^# Skein wire protocol, version (\d+)`)[0], int(ProtocolVersion))
	check("hello's protocol version", num(`\| 1 \| 2 \| protocol version \((\d+)\) \|`)[0], int(ProtocolVersion))
	check("cookie's version", num(`\*\*cookie\*\*: kind .0x02., version \((\d+)\)`)[0], int(ProtocolVersion))

	hl := len(appendHello(nil, hello{Version: ProtocolVersion, Cookie: make([]byte, cookieSize)}))
	check("hello size", num(`padded with zeros to at least (\d+) bytes`)[0], hl)
	check("hello's padding", num(`zero padding to (\d+) bytes`)[0], hl)
	check("hello size with flag bit 1", num(`padded with zeros to at least \d+ bytes; (\d+) with flag bit 1`)[0], helloCertSize)
	check("hello's padding with flag bit 1", num(`zero padding to \d+ bytes \((\d+) with flag bit 1\)`)[0], helloCertSize)
	check("hellos dropped below", num(`drops hellos shorter than (\d+) bytes`)[0], helloSize)
	check("hello cookie length", num(`cookie length: 0 or (\d+)`)[0], cookieSize)

	answers := num(`\(cookie (\d+) bytes, reject (\d+), welcome (\d+)\)`)
	var pub [keySize]byte
	check("cookie size", answers[0], len(appendCookie(nil, &pub, make([]byte, cookieSize))))
	check("reject size", answers[1], len(appendReject(nil, rejectFull, &pub)))
	welcome := welcomeHeader + welcomeBodySize + sealOverhead // what accept writes and handleWelcome requires
	check("welcome size", answers[2], welcome)
	for i, a := range answers {
		if a > hl {
			t.Errorf("answer %d of %d bytes is larger than the hello (%d)", i, a, hl)
		}
	}
	check("cookie field", num(`cookie \((\d+)\) = timestamp`)[0], cookieSize)
	body := num(`AEAD-sealed body \((\d+) \+ (\d+) tag\)`)
	check("welcome body", body[0], welcomeBodySize)
	check("welcome tag", body[1], sealOverhead)
	check("welcome associated data", num(`associated data = the first (\d+) bytes`)[0], welcomeHeader)
	check("reject's reason for a full server", num(`(\d) server full`)[0], int(rejectFull))

	check("MaxDatagram", num(`\*\*(\d+) bytes\*\* \(.MaxDatagram.\)`)[0], MaxDatagram)
	check("link datagram", num(`kept to \*\*(\d+) bytes\*\*`)[0], linkDatagram)
	relay := num(`relay record \((\d+) bytes: outer header (\d+), tag (\d+), frame header (\d+), record header (\d+)\)`)
	check("relay overhead", relay[0], relayOverhead)
	check("data header", relay[1], dataHeaderSize)
	check("tag", relay[2], sealOverhead)
	check("frame header", relay[3], frameHeader)
	check("relay record header", relay[4], relayRecordHeader)
	check("MaxUnreliable", num(`= \*\*(\d+) bytes\*\*. Fan-out frames`)[0], MaxUnreliable)
	check("largest fanned copy", num(`a fanned copy of the largest unreliable message is [\d+ ]+ = (\d+) bytes`)[0],
		dataHeaderSize+frameHeader+fannedHeader+unrelHeader+MaxUnreliable+sealOverhead)
	check("largest fan-out frame", num(`a fan-out frame naming k recipients (\d+) \+ 4k`)[0],
		dataHeaderSize+frameHeader+fanoutHeader+unrelHeader+MaxUnreliable+sealOverhead)
	check("MaxReliable KiB", num(`.MaxReliable. = (\d+) KiB`)[0], MaxReliable>>10)

	check("replay window", num(`a bitmap of the (\d+) below it`)[0], replayWindowSize)
	check("KCP conversation", num(`conversation ID .(0x[0-9a-f]+).`)[0], kcpConv)
	check("KCP MTU", num(`MTU (\d+) \(so one KCP output`)[0], kcpMTU)
	check("close message", num(`message \(0–(\d+) bytes UTF-8\)`)[0], maxCloseMessage)
	check("TCP frame length", num(`big-endian length \(1 to (\d+)\)`)[0], MaxDatagram)
	tcp := TCPConfig{}.withDefaults()
	check("TCP first frame timeout (s)", num("`FirstFrameTimeout` \\((\\d+) s\\)")[0], int(tcp.FirstFrameTimeout.Seconds()))
	check("TCP frame timeout (s)", num(" `FrameTimeout` \\((\\d+) s\\)")[0], int(tcp.FrameTimeout.Seconds()))
	check("TCP idle timeout (s)", num("`IdleTimeout` \\((\\d+) s;")[0], int(tcp.IdleTimeout.Seconds()))
	check("TCP connections per source", num("`MaxConnsPerIP` \\((\\d+)\\)")[0], tcp.MaxConnsPerIP)
	check("TCP bad length", num(`announces a length of 0 or above (\d+)`)[0], MaxDatagram)

	check("oversize datagrams", num(`drops, unread, any datagram longer than (\d+) bytes`)[0], MaxDatagram)
	check("KCP receive window", num(`a receive window of (\d+) \(which bounds`)[0], kcpRecvWindow)
	check("close reason over budget", num(`(\d) shed over a receive memory budget`)[0], int(closeOverBudget))
	check("held segment cost", num(`each held segment is charged \*\*(\d+) bytes\*\*`)[0], kcpHeldCost)
	check("segments a link holds", num(`A link therefore holds at most (\d+) segments`)[0], 2*kcpRecvWindow)
	cfg := Config{}.withDefaults()
	lb := num("`Config.LinkReceiveBudget`, default (\\d+) KiB = (\\d+) segments")
	check("LinkReceiveBudget KiB", lb[0], cfg.LinkReceiveBudget>>10)
	check("LinkReceiveBudget segments", lb[1], cfg.LinkReceiveBudget/kcpHeldCost)
	check("HostReceiveBudget MiB", num("`Config.HostReceiveBudget`, default (\\d+) MiB")[0], cfg.HostReceiveBudget>>20)
}
