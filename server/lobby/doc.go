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
)

var resultNames = [...]string{"ok", "match full", "match not found", "already in a match", "not in a match", "bad request", "server unavailable"}

// String returns a short text a game can show.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown result"
}
