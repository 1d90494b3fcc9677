package agent

// Cancelling a deploy's verification: the rollout it verifies was called off (Argo Rollouts
// aborted it, a person rolled back by hand, the pipeline was cancelled before the rollout),
// so the checks now see the old version and a verdict on them would be about nothing. A
// cancelled deploy ends as a superseded one does: its runs stop and are not recorded, its
// waiters see it, and it calls no rollback or halt webhook and pages nobody. What its
// deploy_started opened (a Slack thread saying "verifying", a deploy tracker's entry) is
// closed by a deploy_cancelled with the reason (notify.go).

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
	"go.opentelemetry.io/otel/attribute"
)

// maxCancelReason bounds the reason a caller gives: it is shown on the status page, in
// gate's output and in the log.
const maxCancelReason = 500

// checkCancelReason says what is wrong with a cancel's reason, "" when nothing is.
func checkCancelReason(reason string) string {
	switch {
	case len(reason) > maxCancelReason:
		return fmt.Sprintf("reason is at most %d bytes, not %d: say why the rollout was called off, e.g. \"Argo Rollouts aborted shop\"", maxCancelReason, len(reason))
	case !utf8.ValidString(reason):
		return "reason must be UTF-8 text"
	case strings.ContainsFunc(reason, unicode.IsControl):
		return "reason must be one line of text, without control characters"
	}
	return ""
}

// CancelDeploy ends the verification of deploy id as cancelled, for reason (may be ""). It
// returns the deploy as it stands after, and whether it is cancelled (by this call or an
// earlier one): a deploy decided otherwise first (passed, failed, inconclusive,
// superseded) keeps its verdict. store.ErrNotFound when there is no such deploy.
func (a *Agent) CancelDeploy(ctx context.Context, id, reason string) (*store.Deploy, bool, error) {
	if msg := checkCancelReason(reason); msg != "" {
		return nil, false, &requestError{400, msg}
	}
	why := "cancelled through the API"
	if r := strings.TrimSpace(reason); r != "" {
		why = "cancelled: " + r
	}
	// Who heard the deploy start, and whether a silence mutes its service, are read before
	// the transaction, as a verdict's context is (verdictContext).
	before, err := a.store.Deploy(ctx, id)
	if err != nil {
		return nil, false, err
	}
	var heard startHeard
	if before.Status == store.StatusVerifying {
		if heard, err = a.startHeard(ctx, before); err != nil {
			return nil, false, err
		}
	}
	now := a.clock.Now()
	// Decided in the store's transaction that holds the deploy, as a verdict is, with the
	// deploy_cancelled that closes what its deploy_started opened: a verdict reported at
	// the same moment either comes first (and the cancel finds it, and sends nothing) or
	// finds the deploy cancelled and sends nothing.
	d, decided, err := a.store.ReportLocation(ctx, id, nil, func(d *store.Deploy, _ []*store.LocationReport) *store.Decision {
		return &store.Decision{DeployID: id, Status: store.StatusCancelled, Reason: why, At: now,
			Outbox: a.deployClosed(d, configs.EventDeployCancelled, why, nil, now, heard)}
	})
	if err != nil {
		return nil, false, err
	}
	if !decided {
		return d, d.Status == store.StatusCancelled, nil
	}
	a.stopCancelled(d)
	a.signalOutbox()
	return d, true, nil
}

// stopCancelled ends this agent's verification of d, now cancelled in the store (other
// agents sharing the store stop theirs at their next look, watch.go), and says so.
func (a *Agent) stopCancelled(d *store.Deploy) {
	a.metrics.verdicts.WithLabelValues(d.Service, store.StatusCancelled).Inc()
	a.mu.Lock()
	v := a.verify[d.ID]
	delete(a.waiting, d.ID)
	a.mu.Unlock()
	if v != nil {
		v.decide()
		if v.span != nil {
			v.span.SetAttributes(attribute.String("vigil.verdict", store.StatusCancelled), attribute.String("vigil.reason", d.Reason))
		}
		a.endVerification(v)
	}
	a.recordEvent(&store.Event{At: d.DecidedAt, Kind: "deploy_" + store.StatusCancelled, Service: d.Service, DeployID: d.ID,
		Summary: d.Service + " " + d.Version + ": " + d.Reason})
	a.log.Info("deploy cancelled; its verification stops, and deploy_cancelled closes what its deploy_started opened", "deploy", d.ID, "service", d.Service,
		"version", d.Version, "reason", d.Reason, "after", d.DecidedAt.Sub(d.CreatedAt))
}

// serviceDeployOf finds the deploy of version of service that a cancel by service and
// version means: the service's deploy verifying now when it is of that version, else the
// newest deploy of that version (decided: the cancel answers with its verdict).
// store.ErrNotFound when the service has no deploy of that version among its last 100.
func (a *Agent) serviceDeployOf(ctx context.Context, service, version string) (*store.Deploy, error) {
	if _, ok := a.Runtime().Config.Services[service]; !ok {
		return nil, &requestError{404, unknownService(a.Runtime(), service).msg}
	}
	list, err := a.store.ServiceDeploys(ctx, service, 100)
	if err != nil {
		return nil, fmt.Errorf("reading the deploys of %s: %w", service, err)
	}
	var newest *store.Deploy
	for _, d := range list { // newest first
		if d.Version != version {
			continue
		}
		if d.Status == store.StatusVerifying {
			return d, nil
		}
		if newest == nil {
			newest = d
		}
	}
	if newest == nil {
		what := "it has no deploy verifying"
		for _, d := range list {
			if d.Status == store.StatusVerifying {
				what = fmt.Sprintf("the one verifying is %s (deploy %s)", text.Ellipsis(d.Version, 80), d.ID)
				break
			}
		}
		return nil, &requestError{404, fmt.Sprintf("no deploy of %s %s to cancel: %s", service, text.Ellipsis(version, 80), what)}
	}
	return newest, nil
}
