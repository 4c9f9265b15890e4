package netplay

import (
	"time"

	"github.com/skein-dev/skein/engine/net"
	"github.com/skein-dev/skein/engine/rmi"
	"github.com/skein-dev/skein/server/lobby"
)

// The server sends its match list a page at a time (never more than fits in
// lobby.MaxPageBytes): the session shows one page, and moves between pages
// on request.

// MatchPage says which part of the server's list Matches holds.
type MatchPage struct {
	// Index is the page's number, 0 for the first.
	Index int
	// Total counts the server's open matches.
	Total int
	// More: a next page exists (NextPage moves to it).
	More bool
}

// matchPages is the session's place in the server's match list.
type matchPages struct {
	size  int      // matches a page asks for (0: as many as the server sends)
	after uint32   // the after of the page shown
	back  []uint32 // the after of each page before it
	next  uint32   // the after of the next page, 0 when none
	total int
}

// SetPageSize sets how many matches a page of the list asks for (at most
// lobby.MaxPageMatches; 0: as many as the server sends), as many as the
// browser shows at once.
func (s *Session) SetPageSize(n int) {
	s.pages.size = min(max(n, 0), lobby.MaxPageMatches)
}

// MatchPage returns where Matches is in the server's list.
func (s *Session) MatchPage() MatchPage {
	return MatchPage{Index: len(s.pages.back), Total: s.pages.total, More: s.pages.next != 0}
}

// NextPage moves to the next page of the list and asks for it; false (and
// nothing asked) on the last page.
func (s *Session) NextPage() bool {
	p := &s.pages
	if p.next == 0 {
		return false
	}
	p.back = append(p.back, p.after)
	p.after, p.next = p.next, 0
	s.RefreshMatches()
	return true
}

// PrevPage moves to the previous page and asks for it; false on the first.
func (s *Session) PrevPage() bool {
	p := &s.pages
	if len(p.back) == 0 {
		return false
	}
	p.after, p.back, p.next = p.back[len(p.back)-1], p.back[:len(p.back)-1], 0
	s.RefreshMatches()
	return true
}

// RefreshMatches asks the server for the page of its match list shown
// (see Matches, MatchPage).
func (s *Session) RefreshMatches() {
	s.listing.Cancel() // an older page's answer is stale
	pend, err := s.lob.ListMatches(net.ServerID, rmi.Reliable, s.pages.after, uint8(s.pages.size), s.onMatchList)
	if err != nil {
		s.lobbyErr = err.Error()
	}
	s.listing = pend
}

func (s *Session) onMatchList(result lobby.Result, ms []lobby.MatchInfo, next, total uint32, err error) {
	s.listing = rmi.Pending{}
	if err != nil || result != lobby.ResultOK {
		return // asked too often, or no answer: the next refresh asks again
	}
	p := &s.pages
	if len(ms) == 0 && len(p.back) > 0 {
		// The matches of this page ended: back to the first page.
		p.after, p.back, p.next = 0, p.back[:0], 0
		s.RefreshMatches()
		return
	}
	s.matches, s.listedAt = ms, time.Now()
	p.next, p.total = next, int(total)
}
