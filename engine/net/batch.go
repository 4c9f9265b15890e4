package net

// writeMessages writes msgs through bw with as few calls as it takes. A
// datagram the conn refuses is skipped, as a failed WriteTo drops only its
// own datagram; a closed conn ends the batch. Afterwards N > 0 marks the
// datagrams written (Skein never writes an empty one).
func writeMessages(bw BatchWriter, msgs []Message) {
	for i := range msgs {
		msgs[i].N = 0
	}
	for len(msgs) > 0 {
		n, err := bw.WriteBatch(msgs)
		if err == nil && n >= len(msgs) {
			return
		}
		if isClosed(err) {
			return
		}
		// msgs[n] was refused (or, from a conn breaking the contract, not
		// written without a reason): skip it, write the rest.
		msgs = msgs[min(n+1, len(msgs)):]
	}
}
