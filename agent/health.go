package agent

// Readiness (/readyz): what must hold for the agent to be worth sending traffic to.

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// readyz answers 200 when the config is loaded, the store takes every kind of write, no
// verdict waits to be written and Chromium starts (when browser checks exist); 503 naming
// each problem otherwise.
func (a *Agent) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var problems []string
	rt := a.Runtime()
	if rt == nil {
		problems = append(problems, "no configuration loaded")
	}
	if err := a.store.Writable(ctx); err != nil {
		problems = append(problems, "store not writable: "+err.Error())
	}
	if err := a.store.Health(ctx); err != nil {
		problems = append(problems, "store: "+err.Error())
	}
	if n := a.unrecordedVerdicts(); n > 0 {
		problems = append(problems, fmt.Sprintf("%d %s decided but not yet written to the store (retrying)", n, plural(n, "verdict")))
	}
	if rt != nil && rt.HasBrowserChecks() && a.opts.BrowserReady != nil {
		if err := a.opts.BrowserReady(ctx); err != nil {
			problems = append(problems, "browser not usable: "+err.Error())
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": len(rt.Order), "config_loaded_at": rt.Loaded.UTC()})
}
