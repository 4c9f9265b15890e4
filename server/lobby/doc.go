package lobby

//go:generate go run ../../tools/rmigen -o lobby_rmi.go lobby.rmi

// Limits of the lobby's messages, the same for every server.
const (
	// MaxOptions is the most bytes of options a match may carry;
	// CreateMatch refuses more with TooLarge.
	MaxOptions = 4096
	// MaxPageMatches is the most matches in one MatchList.
	MaxPageMatches = 64
	// MaxPageBytes bounds the encoded MatchList call (its frame, before the
	// transport's framing): a page holds the matches that fit, at least one
	// (a match of the longest name and MaxOptions bytes fits), far below
	// engine/net's MaxReliable.
	MaxPageBytes = 16 << 10
)

// Text returns a short text a game can show.
func (r Result) Text() string {
	if int(r) < len(resultTexts) {
		return resultTexts[r]
	}
	return "unknown result"
}

var resultTexts = [...]string{"ok", "match full", "match not found", "already in a match", "not in a match", "bad request", "server unavailable", "too many requests", "options too large"}
