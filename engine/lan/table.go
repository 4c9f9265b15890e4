package lan

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Entry is one advertiser a Browser currently hears.
type Entry struct {
	Beacon
	// Addr is the address to dial: the beacon's source address with
	// Beacon.Port. When one advertiser is heard from several addresses
	// (loopback and a LAN address on the same machine, two interfaces),
	// Addr is the best live one: loopback first, then private, then others.
	Addr netip.AddrPort
	// FirstSeen is when the first beacon arrived; LastSeen the latest.
	FirstSeen, LastSeen time.Time
	// Expires is when the entry goes away unless another beacon arrives.
	Expires time.Time
}

// maxSources bounds the source addresses kept per entry.
const maxSources = 4

// record is the table's state for one instance.
type record struct {
	e       Entry
	sources map[netip.Addr]time.Time // source address -> last heard
}

// table is the live list behind a Browser. It does no I/O and takes the
// time as an argument, so expiry is tested without waiting.
type table struct {
	ttl  time.Duration
	max  int
	recs map[uint64]*record
}

func newTable(ttl time.Duration, max int) *table {
	return &table{ttl: ttl, max: max, recs: make(map[uint64]*record)}
}

// observe applies one valid beacon heard from src at now. It reports
// whether the visible list changed (an entry came, went, or changed a field
// other than its times), and false for full when a new entry found the
// table full (the beacon is dropped).
func (t *table) observe(b Beacon, src netip.Addr, now time.Time) (changed, full bool) {
	r := t.recs[b.Instance]
	if b.Leaving {
		// A goodbye removes the advertiser whichever address it came from.
		if r == nil {
			return false, false
		}
		delete(t.recs, b.Instance)
		return true, false
	}
	if r == nil {
		if len(t.recs) >= t.max {
			t.expire(now)
			if len(t.recs) >= t.max {
				return false, true
			}
		}
		r = &record{e: Entry{FirstSeen: now}, sources: make(map[netip.Addr]time.Time, 1)}
		t.recs[b.Instance] = r
		changed = true
	}
	if _, ok := r.sources[src]; !ok && len(r.sources) >= maxSources {
		// Keep the table bounded: forget the stalest source first.
		var stalest netip.Addr
		var at time.Time
		for a, seen := range r.sources {
			if !stalest.IsValid() || seen.Before(at) {
				stalest, at = a, seen
			}
		}
		delete(r.sources, stalest)
	}
	r.sources[src] = now
	old := r.e
	r.e.Beacon = b
	r.e.Addr = netip.AddrPortFrom(best(r.sources, now, t.ttl), b.Port)
	r.e.LastSeen = now
	r.e.Expires = now.Add(t.ttl)
	if !changed {
		changed = !sameVisible(&old, &r.e)
	}
	return changed, false
}

// sameVisible compares what a list shows, ignoring the times.
func sameVisible(a, b *Entry) bool {
	return a.Addr == b.Addr && a.Kind == b.Kind && a.Name == b.Name &&
		a.Protocol == b.Protocol && a.Players == b.Players && a.Capacity == b.Capacity &&
		a.Port == b.Port && string(a.Info) == string(b.Info)
}

// best picks the preferred live source: loopback, then private, then the
// others, ties broken by address order. Sources not heard for ttl are
// removed first (one always stays: the caller just heard it).
func best(sources map[netip.Addr]time.Time, now time.Time, ttl time.Duration) netip.Addr {
	for a, seen := range sources {
		if len(sources) > 1 && now.Sub(seen) >= ttl {
			delete(sources, a)
		}
	}
	rank := func(a netip.Addr) int {
		switch {
		case a.IsLoopback():
			return 0
		case a.IsPrivate():
			return 1
		}
		return 2
	}
	var out netip.Addr
	for a := range sources {
		if !out.IsValid() || cmp.Or(cmp.Compare(rank(a), rank(out)), a.Compare(out)) < 0 {
			out = a
		}
	}
	return out
}

// expire removes the entries whose time is up and reports whether any went.
func (t *table) expire(now time.Time) (changed bool) {
	for id, r := range t.recs {
		if !now.Before(r.e.Expires) {
			delete(t.recs, id)
			changed = true
		}
	}
	return changed
}

// next returns the earliest expiry, or the zero time when the table is empty.
func (t *table) next() time.Time {
	var n time.Time
	for _, r := range t.recs {
		if n.IsZero() || r.e.Expires.Before(n) {
			n = r.e.Expires
		}
	}
	return n
}

// entries returns copies of the live entries at now, sorted by name, then
// address, then instance.
func (t *table) entries(now time.Time) []Entry {
	out := make([]Entry, 0, len(t.recs))
	for _, r := range t.recs {
		if now.Before(r.e.Expires) {
			e := r.e
			e.Info = slices.Clone(e.Info)
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), a.Addr.Compare(b.Addr), cmp.Compare(a.Instance, b.Instance))
	})
	return out
}
