package trust

import (
	"fmt"
	"sync"

	"github.com/skein-dev/skein/engine/net"
)

// Status is what a Check decided.
type Status int

const (
	// Unchecked: Verify has not accepted a key yet.
	Unchecked Status = iota
	// New: the server's name was unknown; its key was accepted and
	// remembered (show the player its fingerprint).
	New
	// Known: the server proved the key remembered for its name.
	Known
)

func (s Status) String() string {
	switch s {
	case New:
		return "new"
	case Known:
		return "known"
	case Unchecked:
		return "unchecked"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Check verifies one server's key against the store for one Dial: set
// Config.VerifyServerKey to its Verify. The remembered entry is read when
// the Check is made (by the caller, not on the host's reading goroutine),
// so a known server costs Verify a comparison; an unknown one costs one
// write of the store.
type Check struct {
	s    *Store
	name string
	have bool
	e    entry

	mu     sync.Mutex
	status Status
	key    net.ServerKey
}

// Check reads what the store remembers for server ("host:port") and
// returns a Check for it. A corrupt store is an error here: the caller
// refuses to connect rather than trust on first use again.
func (s *Store) Check(server string) (*Check, error) {
	name, err := NormalizeName(server)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	m, err := s.load()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	e, ok := m[name]
	return &Check{s: s, name: name, have: ok, e: e}, nil
}

// Server returns the name the Check is for, as stored.
func (c *Check) Server() string { return c.name }

// Verify is a net.Config.VerifyServerKey: a known server must prove the
// remembered key (otherwise a *ChangedError); an unknown one is accepted
// and remembered (Status New). An error writing the store refuses the
// server too: a key that could not be remembered would be trusted on
// first use again next time, silently.
func (c *Check) Verify(k net.ServerKey) error {
	var err error
	status := Known
	if c.have {
		err = c.s.compare(c.name, c.e, k)
	} else {
		// Remember re-reads the file: another process may have remembered
		// a key for this name since the Check was made.
		status = New
		err = c.s.Remember(c.name, k)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.status == Unchecked {
		c.status, c.key = status, k
	}
	c.mu.Unlock()
	return nil
}

// Precheck is a net.Config.CheckServerKey: before a Dial seals its
// credentials to a key that is not proven yet, a known server's key must
// be the remembered one (otherwise a *ChangedError, and the credentials
// never leave); an unknown server's key passes. It writes nothing: only
// Verify, called once the key is proven, remembers a key.
func (c *Check) Precheck(k net.ServerKey) error {
	if !c.have {
		return nil
	}
	return c.s.compare(c.name, c.e, k)
}

// Configure sets cfg's CheckServerKey and VerifyServerKey to c's Precheck
// and Verify.
func (c *Check) Configure(cfg *net.Config) {
	cfg.CheckServerKey = c.Precheck
	cfg.VerifyServerKey = c.Verify
}

// Status reports what Verify decided, and the key it accepted.
func (c *Check) Status() (Status, net.ServerKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.key
}
