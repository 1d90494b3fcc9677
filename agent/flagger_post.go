package agent

// Flagger's post-rollout webhook: called once a canary's analysis is over, with the phase
// it ended in. Succeeded (promoted) changes nothing: the call answers the canary's verdict,
// as a gate's call does. Failed (Flagger rolled the canary back: its own metric analysis
// failed, the progress deadline passed, someone aborted it) and Terminating or Terminated
// (the Canary was deleted) mean the canary's version is served no more: the canary's deploy,
// when still verifying, is cancelled as `vigil cancel` cancels one (cancel.go), so that
// vigil pages nobody and calls no rollback webhook for a version Flagger already took
// away, and the call answers 200 (Flagger only records a post-rollout hook's answer).

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// flaggerNotPromoted are the phases after an analysis that did not promote the canary.
var flaggerNotPromoted = []string{"Failed", "Terminating", "Terminated"}

// postRollout serves a post-rollout call for canary p of service.
func (h *flaggerHook) postRollout(w http.ResponseWriter, r *http.Request, service string, p flaggerPayload, wait time.Duration) {
	canary := text.Ellipsis(p.Name, 80) + "." + text.Ellipsis(p.Namespace, 80)
	if !slices.Contains(flaggerDone, p.Phase) {
		writeError(w, http.StatusBadRequest, "a post-rollout webhook is called when canary %s's analysis is over, with phase %s, not %q: is metadata.type right? (vigil gates with type %s)",
			canary, strings.Join(flaggerDone, ", "), text.Ellipsis(p.Phase, 40), strings.Join(flaggerGates, ", "))
		return
	}
	const hint = " (the service is metadata.service, else the canary's name)"
	if h.a.Runtime().Config.Services[service] == nil {
		writeError(w, http.StatusUnprocessableEntity, "%s%s", unknownService(h.a.Runtime(), service).msg, hint)
		return
	}
	d, err := h.ended(r.Context(), service, p)
	if h.a.answerFailed(w, err, hint, unavailable{
		"cancelling the canary's deploy failed (%v): Flagger does not call a post-rollout hook again; cancel it with vigil cancel",
		"flagger webhook: cancelling the canary's deploy failed", []any{"service", service, "checksum", p.Checksum}}) {
		return
	}
	notPromoted := slices.Contains(flaggerNotPromoted, p.Phase)
	switch {
	case d == nil:
		writeJSON(w, http.StatusOK, flaggerAnswer{Status: http.StatusOK, Verdict: "none", Service: service,
			Reason: fmt.Sprintf("vigil has no deploy of canary %s (checksum %s): a gate hook (type %s) registers one", canary, p.Checksum, strings.Join(flaggerGates, ", "))})
	case notPromoted:
		ans := h.verdict(d)
		ans.Status = http.StatusOK
		writeJSON(w, ans.Status, ans)
	default:
		h.answer(w, r, d, wait)
	}
}

// ended finds canary p's deploy (nil when vigil has none) and, when the canary was not
// promoted and its deploy still verifies, cancels it. A deploy decided before keeps its
// verdict, as with every cancel.
func (h *flaggerHook) ended(ctx context.Context, service string, p flaggerPayload) (*store.Deploy, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list, err := h.a.store.ServiceDeploys(ctx, service, 100)
	if err != nil {
		return nil, fmt.Errorf("reading the deploys of %s: %w", service, err)
	}
	var d *store.Deploy
	for _, c := range list { // newest first: A, B, A again is the last A's
		checksum, keyed := flaggerChecksum(c.RequestKey)
		if c.Environment == p.Namespace && (checksum == p.Checksum || !keyed && c.Version == p.Checksum) {
			d = c
			break
		}
	}
	if d == nil || d.Status != store.StatusVerifying || !slices.Contains(flaggerNotPromoted, p.Phase) {
		return d, nil
	}
	reason := fmt.Sprintf("Flagger ended canary %s.%s %s, not promoted (post-rollout webhook)",
		text.Ellipsis(p.Name, 80), text.Ellipsis(p.Namespace, 80), p.Phase)
	id := d.ID
	d, cancelled, err := h.a.CancelDeploy(ctx, id, reason)
	if err != nil {
		return nil, fmt.Errorf("cancelling deploy %s: %w", id, err)
	}
	if cancelled {
		h.a.log.Info("flagger webhook: the canary was not promoted; its deploy is cancelled", "deploy", id, "service", service,
			"canary", p.Name+"."+p.Namespace, "phase", p.Phase, "checksum", p.Checksum)
	}
	return d, nil
}
