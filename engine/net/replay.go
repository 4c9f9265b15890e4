package net

// replayWindow rejects packet numbers seen before or too old, in the manner
// of RFC 6479: a bitmap of the replayWindowSize packet numbers below the
// highest one accepted. It is not safe for concurrent use.
type replayWindow struct {
	max  uint64 // highest packet number accepted; valid when any is set
	any  bool
	bits [replayWords]uint64
}

const (
	// replayWords sizes the window like WireGuard's (8192 bits, 1 KiB a
	// link): a sender's writer goroutine descheduled on a busy machine can
	// put a few milliseconds of datagrams (thousands at full speed) ahead
	// of one it numbered earlier, and a window of 960 dropped those as
	// replays.
	replayWords = 128
	// replayWindowSize leaves one word spare so the word holding the oldest
	// accepted number never aliases the word of the highest one.
	replayWindowSize = (replayWords - 1) * 64 // 8128 packet numbers
)

// check reports whether pn is new, without recording it.
func (w *replayWindow) check(pn uint64) bool {
	if !w.any || pn > w.max {
		return true
	}
	if w.max-pn >= replayWindowSize {
		return false
	}
	return w.bits[(pn/64)%replayWords]&(1<<(pn%64)) == 0
}

// accept records pn, which check must have approved.
func (w *replayWindow) accept(pn uint64) {
	if !w.any {
		w.any = true
		w.max = pn
		w.bits = [replayWords]uint64{}
	} else if pn > w.max {
		// Clear the words between the old and the new highest number.
		oldWord, newWord := w.max/64, pn/64
		if newWord-oldWord >= replayWords {
			w.bits = [replayWords]uint64{}
		} else {
			for i := oldWord + 1; i <= newWord; i++ {
				w.bits[i%replayWords] = 0
			}
		}
		w.max = pn
	}
	w.bits[(pn/64)%replayWords] |= 1 << (pn % 64)
}
