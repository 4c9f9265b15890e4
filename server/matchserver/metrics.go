package matchserver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/skein-dev/skein/engine/net"
)

// metrics is the server's Prometheus registry (its own, not the global
// default) and the instruments the lobby updates.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	results     *prometheus.CounterVec
	overloaded  prometheus.Counter
	lobbyErrors prometheus.Counter
	chatDropped *prometheus.CounterVec
	rtt         prometheus.Histogram
	lobbyLimits lobbyLimitMetrics // the lobby's limits (lobbylimits.go)
	s           *Server
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), s: s}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_lobby_requests_total", Help: "Lobby calls by kind."}, []string{"call"})
	m.results = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_lobby_results_total", Help: "Lobby answers by result."}, []string{"result"})
	// A retry the reply window still knows is a duplicate; one older than
	// the window, or whose answer was dropped from the reply cache, is
	// stale: the server cannot tell whether it ran, and says so.
	duplicates := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "skein_lobby_duplicate_requests_total", Help: "Requests repeated with the same sequence number within the reply window (answered from the reply cache, or not at all while the first is worked on or once its answer was sent again the most times)."}, func() float64 {
		st := s.reqs.Stats()
		return float64(st.Replayed + st.Busy + st.ReplayDrops)
	})
	stale := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "skein_lobby_stale_requests_total", Help: "Requests answered Stale: older than the reply window, or repeated after their answer left the reply cache (not run; not counted as duplicates)."}, func() float64 {
		return float64(s.reqs.Stats().Stale)
	})
	m.overloaded = prometheus.NewCounter(prometheus.CounterOpts{Name: "skein_match_queue_full_total", Help: "Requests refused because a match's job queue was full."})
	m.lobbyErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "skein_lobby_bad_calls_total", Help: "Lobby frames that did not decode or named no call."})
	m.rtt = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "skein_client_rtt_seconds", Help: "Smoothed RTT of each client, sampled every 5 s.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.chatDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skein_lobby_chat_dropped_total", Help: "Lobby chat lines not relayed, by reason."}, []string{"reason"})
	m.reg.MustRegister(m.requests, m.results, duplicates, stale, m.overloaded, m.lobbyErrors, m.rtt, m.chatDropped)
	m.lobbyLimits.register(m.reg)

	host := func() net.HostStats { return s.sync.Host().Stats() }
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	// reasonCounter registers one series of a counter labelled by reason.
	reasonCounter := func(name, help, reason string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: name, Help: help, ConstLabels: prometheus.Labels{"reason": reason},
		}, f))
	}
	gauge("skein_clients", "Connected clients.", func() float64 { return float64(host().Links) })
	gauge("skein_matches", "Open matches.", func() float64 { return float64(s.reg.count()) })
	gauge("skein_groups", "P2P groups.", func() float64 { return float64(len(s.sync.Groups())) })
	registerNATGauges(m.reg, s.sync.NATCounts)
	counter("skein_relayed_datagrams_total", "Datagrams relayed between peers.", func() float64 { return float64(host().Relayed.DatagramsOut) })
	counter("skein_relayed_bytes_total", "Bytes relayed between peers.", func() float64 { return float64(host().Relayed.BytesOut) })
	counter("skein_fanout_messages_total", "Unreliable group messages clients sent up for the server to fan out.", func() float64 { return float64(host().Fanned.DatagramsIn) })
	counter("skein_fanout_copies_total", "Copies of fanned-out group messages sent to members (also counted in skein_relayed_datagrams_total).", func() float64 { return float64(host().Fanned.DatagramsOut) })
	counter("skein_fanout_bytes_total", "Bytes of fanned-out copies sent to members (also counted in skein_relayed_bytes_total).", func() float64 { return float64(host().Fanned.BytesOut) })
	counter("skein_datagrams_in_total", "Datagrams received.", func() float64 { return float64(host().DatagramsIn) })
	counter("skein_datagrams_out_total", "Datagrams sent.", func() float64 { return float64(host().DatagramsOut) })
	counter("skein_handshakes_total", "Clients that completed the handshake.", func() float64 { return float64(host().Handshakes) })
	counter("skein_handshake_failures_total", "Hellos refused with a reject other than a rate limit's busy (version, bad cookie, full, too many unconfirmed).", func() float64 { return float64(host().HandshakeFailures) })
	counter("skein_slow_client_kicks_total", "Clients dropped because their send queue was full.", func() float64 { return float64(s.sync.SlowKicks()) })
	tcp := func() net.TCPStats { return s.sync.TCPStats() }
	gauge("skein_tcp_connections", "Open connections of the TCP fallback.", func() float64 { return float64(tcp().Open) })
	counter("skein_tcp_accepted_total", "Connections the TCP fallback accepted.", func() float64 { return float64(tcp().Accepted) })
	counter("skein_tcp_accept_errors_total", "Failed accepts of the TCP fallback (such as no file descriptor left).", func() float64 { return float64(tcp().AcceptErrors) })
	for r := net.TCPCloseReason(0); r < net.NumTCPCloseReasons; r++ {
		reasonCounter("skein_tcp_closed_total", "TCP fallback connections refused or closed, by reason.", r.String(), func() float64 { return float64(tcp().Closed[r]) })
	}
	gauge("skein_receive_held_bytes", "Received reliable data the server holds, not yet delivered (out of order or waiting), against -host-receive-budget.", func() float64 { return float64(s.sync.Host().HeldBytes()) })
	// Reconnect and resume (docs/SEMANTICS.md, "Reconnect and resume").
	gauge("skein_suspended_clients", "Clients whose link timed out, kept for -resume-grace (counted in skein_clients).", func() float64 { return float64(host().Resume.Suspended) })
	counter("skein_resumed_sessions_total", "Suspended clients that came back within -resume-grace.", func() float64 { return float64(host().Resume.Resumed) })
	counter("skein_suspensions_expired_total", "Suspended clients removed at the end of -resume-grace.", func() float64 { return float64(host().Resume.Expired) })
	// Logins (docs/PROTOCOL.md, "Credentials").
	counter("skein_logins_total", "Clients the auth mode admitted (before the capacity checks).", func() float64 { return float64(host().Auth.Logins) })
	counter("skein_sessions_replaced_total", "Sessions kicked by a new login of their user.", func() float64 { return float64(host().Auth.Replaced) })
	counter("skein_auth_queue_full_total", "Logins refused as busy: every Authenticate worker and queue place taken.", func() float64 { return float64(host().Auth.QueueFull) })
	counter("skein_auth_source_busy_total", "Logins refused as busy: their source already had Config.AuthPerSource handshakes in the Authenticate hook's hands.", func() float64 { return float64(host().Auth.SourceBusy) })
	gauge("skein_auth_in_flight", "Logins the Authenticate hook is deciding.", func() float64 { return float64(host().Auth.InFlight) })
	for reason, f := range map[string]func(net.AuthStats) uint64{
		"unauthorized":      func(a net.AuthStats) uint64 { return a.Unauthorized },
		"banned":            func(a net.AuthStats) uint64 { return a.Banned },
		"expired":           func(a net.AuthStats) uint64 { return a.Expired },
		"already_logged_in": func(a net.AuthStats) uint64 { return a.AlreadyLoggedIn },
		"unavailable":       func(a net.AuthStats) uint64 { return a.Unavailable },
	} {
		reasonCounter("skein_login_refused_total", "Logins refused, by the reason sent to the client.", reason, func() float64 { return float64(f(host().Auth)) })
	}
	// Admission (docs/PROTOCOL.md, "Admission").
	gauge("skein_pending_clients", "Clients admitted whose handshake is not confirmed yet (counted in skein_clients).", func() float64 { return float64(host().Admission.Pending) })
	counter("skein_busy_rejects_total", "Busy rejects sent to hellos over a handshake rate.", func() float64 { return float64(host().Admission.Busy) })
	counter("skein_pending_expired_total", "Unconfirmed clients removed after -pending-timeout.", func() float64 { return float64(host().Admission.Expired) })
	for reason, f := range map[string]func(net.AdmissionStats) uint64{
		"source_rate":  func(a net.AdmissionStats) uint64 { return a.SourceLimited },
		"conn_rate":    func(a net.AdmissionStats) uint64 { return a.ConnLimited },
		"full":         func(a net.AdmissionStats) uint64 { return a.Full },
		"pending_full": func(a net.AdmissionStats) uint64 { return a.PendingFull },
		"source_full":  func(a net.AdmissionStats) uint64 { return a.SourceFull },
		"replayed":     func(a net.AdmissionStats) uint64 { return a.Replayed },
	} {
		reasonCounter("skein_admission_refused_total", "Hellos refused by admission, by reason.", reason, func() float64 { return float64(f(host().Admission)) })
	}
	for r := net.DropReason(0); r < net.NumDropReasons; r++ {
		reasonCounter("skein_drops_total", "Datagrams and messages dropped, by reason (the transport's and the group layer's).", r.String(), func() float64 { return float64(host().Drops[r] + s.sync.Drops()[r]) })
	}
	return m
}

// startSampler observes every client's RTT every 5 s until stopped.
func (m *metrics) startSampler() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h := m.s.sync.Host()
				for _, id := range h.Peers() {
					if st, ok := h.LinkStats(id); ok && st.RTT > 0 {
						m.rtt.Observe(st.RTT.Seconds())
					}
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// natGaugesHelp is skein_clients_nat's help text.
const natGaugesHelp = "Connected clients by the NAT type they reported (unknown: the server has no -nat-probe address)."

// natGauges is skein_clients_nat{type}: one count of the clients per
// scrape (counts, sync.Server.NATCounts, walks them all once) gives every
// type's gauge, where a gauge function per type would walk them once per
// type.
type natGauges struct {
	desc   *prometheus.Desc
	counts func() [net.NumNATTypes]int
}

// registerNATGauges registers skein_clients_nat{type}, read from counts.
func registerNATGauges(reg prometheus.Registerer, counts func() [net.NumNATTypes]int) {
	reg.MustRegister(&natGauges{
		desc:   prometheus.NewDesc("skein_clients_nat", natGaugesHelp, []string{"type"}, nil),
		counts: counts,
	})
}

// Describe sends the one descriptor of every type's gauge.
func (g *natGauges) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect counts the clients once and sends a gauge for every type.
func (g *natGauges) Collect(ch chan<- prometheus.Metric) {
	n := g.counts()
	for t := range net.NumNATTypes {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n[t]), t.String())
	}
}
