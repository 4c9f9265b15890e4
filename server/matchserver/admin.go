package matchserver

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminMux serves /healthz and /metrics.
func (s *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	log := s.cfg.Logger.Named("admin")
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status, code := "ok", http.StatusOK
		if s.closing.Load() {
			status, code = "shutting down", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{ // a client that hung up does not read it
			"status":  status,
			"clients": s.sync.Host().Stats().Links,
			"matches": s.reg.count(),
			"uptime":  time.Since(s.started).Round(time.Second).String(),
		})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: log.StandardLogger(nil)}))
	return mux
}
