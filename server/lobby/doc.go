package lobby

//go:generate go run ../../tools/rmigen -o lobby_rmi.go lobby.rmi

// Result is the outcome of a lobby request, sent as a uint8.
type Result uint8

// Result codes.
const (
	OK             Result = 0 // done
	Full           Result = 1 // the match has MaxPlayers players
	NotFound       Result = 2 // no such match
	AlreadyInMatch Result = 3 // leave the current match first
	NotInMatch     Result = 4 // nothing to leave
	BadRequest     Result = 5 // an argument is out of range
	Unavailable    Result = 6 // the server is shutting down or overloaded
	RateLimited    Result = 7 // too many calls from this client: wait a little and ask again
	TooLarge       Result = 8 // the match options are over MaxOptions bytes
)

var resultNames = [...]string{"ok", "match full", "match not found", "already in a match", "not in a match", "bad request", "server unavailable", "too many requests", "options too large"}

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

// String returns a short text a game can show.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown result"
}
