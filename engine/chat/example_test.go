package chat_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skein-dev/skein/engine/chat"
)

// A receiver checks every message: Clean for the text, a Limiter for the
// sender's pace.
func Example() {
	limit := chat.NewLimiter[uint32](chat.LimiterConfig{Rate: 1, Burst: 2})
	now := time.Now()
	receive := func(from uint32, name, text string) {
		text, err := chat.Clean(text)
		if err != nil {
			fmt.Println("dropped:", err)
			return
		}
		v := limit.Allow(from, now)
		switch {
		case v.FirstDrop:
			fmt.Printf("* %s is sending too fast\n", name)
		case v.Allow:
			fmt.Printf("<%s> %s\n", name, text)
		}
	}
	receive(1001, "Bob", "hi\x1b[2J there")
	receive(1001, "Bob", "\u202etxt.exe")
	receive(1001, "Bob", "spam")
	receive(1001, "Bob", "spam")
	receive(1001, "Bob", string(make([]byte, 2000)))

	// A sender checks before sending, and says why a line was refused.
	if _, err := chat.Clean(strings.Repeat("a", 301)); errors.Is(err, chat.ErrTooLong) {
		fmt.Println("not sent:", err)
	}
	// Output:
	// <Bob> hi[2J there
	// <Bob> txt.exe
	// * Bob is sending too fast
	// dropped: message too long: 2000 characters, the limit is 280
	// not sent: message too long: 301 characters, the limit is 280
}
