package agent

// The events timeline the status page shows: a check's incident opening, reminding and
// closing, deploy verdicts, what rollback and halt webhooks did, silences added and
// removed. Events are written beside the state change they describe, never instead of it:
// a failed write is logged and the change stands.

import (
	"context"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// Event kinds of the timeline. Deploy verdicts use their status (deploy_failed, ...) and
// check incidents their notification event (check_failed, check_recovered).
const (
	eventCheckReminder  = "check_reminder"
	eventCheckClosed    = "check_closed"
	eventRollback       = "rollback"
	eventHalt           = "halt"
	eventSilenceAdded   = "silence_added"
	eventSilenceRemoved = "silence_removed"
)

// recordEvent appends e to the timeline, with its summary redacted.
func (a *Agent) recordEvent(e *store.Event) {
	if e.At.IsZero() {
		e.At = a.clock.Now()
	}
	e.Summary = a.redactor().String(text.Ellipsis(e.Summary, 2000))
	if err := a.store.AddEvent(context.WithoutCancel(a.runCtx), e); err != nil {
		a.log.Warn("recording an event of the status page's timeline failed", "kind", e.Kind, "check", e.Check, "deploy", e.DeployID, "error", err)
	}
}

// contacts are who a check's failure is for and where its runbook is: the check's own
// owners and runbook_url, else those of its services (in name order).
func (a *Agent) contacts(rt *Runtime, c *checks.Check) (owners []string, runbook string) {
	owners, runbook = c.Config.Owners, string(c.Config.RunbookURL)
	for _, s := range rt.CheckServices[c.Name] {
		svc := rt.Config.Services[s]
		if svc == nil {
			continue
		}
		if len(owners) == 0 {
			owners = svc.Owners
		}
		if runbook == "" {
			runbook = string(svc.RunbookURL)
		}
	}
	return owners, runbook
}
