package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// The verdict rules, apart from the agent that applies them: a tally per check of the runs
// in a deploy's verification window, the fail-fast rule applied after every run, and the
// rules applied once the window has run out. They read no clock and touch no store, so
// they are table-tested on their own (verdict_test.go).
//
// A failed run is an answer: past failure_limit it fails the deploy at once. An
// inconclusive or errored run is the absence of one: it never ends a window while rounds
// remain (new pods' metrics appear a scrape or two after the deploy, and a later round may
// still fail). When the window ends:
//   - a check that never gave an answer (no pass, no fail) is inconclusive;
//   - inconclusive runs before a check's first answer are "no data yet" and do not count;
//     after it, more than inconclusive_limit of them make the verdict inconclusive;
//   - more than consecutive_error_limit errors in a row, anywhere in the window, make it
//     inconclusive: vigil could not measure.
//
// A streak of errors can be an answer too, and fails the deploy at once: more than
// consecutive_error_limit runs in a row in which the service gave no answer (refused,
// dropped, none in time: checks.Result.NoAnswer), by a check that passed before the deploy
// (it has a baseline). The path vigil measures through worked before the deploy; after it
// the service is down or hung, which is what a crash on start or a deadlock looks like.
// Argo Rollouts aborts a rollout on errors past the limit whatever they are; vigil keeps
// its own trouble (Prometheus down, a browser that crashed) and a check with nothing from
// before the deploy to compare with to the inconclusive rule above.
//
// So does a service that keeps going away: after its first answer in the window, silent
// again in two spells or more (it answered in between: a process that crashes and is
// restarted, over and over), a check that passed before the deploy counts its silent runs
// since that first answer as it counts failed runs, and more than failure_limit of them
// fail the deploy at once. A run that answered on its retry after an attempt without an
// answer (checks.Result.RetriedSilence) counts as one such run: with retries, a restart
// quicker than the retry's backoff is seen only there. Through a load balancer the same
// restarts are 502s, failed runs already; on a direct path (a sidecar next to the
// service) they are refused connections, each spell shorter than consecutive_error_limit.
// Silence before the first answer (the new process starting, a rollout reaching the path)
// and a single spell after it (one blip) never count here.
//
// With verify.registered_before_rollout (the pipeline registers a deploy before its
// rollout begins, so no run before the registration is the new version's), a check that
// was already failing when the deploy was registered (its incident open, its newest run
// before the deploy failed) is not the deploy's doing when it goes on failing the same
// way: a hotfix shipped into an outage that does not end it. A run after the deploy that
// fails on nothing but what the newest run before it failed on (the same assertions, the
// same kind failures) counts as inconclusive, not failed: it cannot end the window, and a check
// that never passed is inconclusive at its end, which pages people and calls no rollback.
// A new failure (another assertion, the service no longer answering) is the deploy's as
// ever, and so is a relapse after the check first passed, past inconclusive_limit, which
// is inconclusive too. The startup rules do not hold such a check: it was not ready before.

// tally is one check's runs in a verification window.
type tally struct {
	runs, passed, failed, inconclusive, errors int
	// answered is set once a run passed or failed.
	answered bool
	// lateInconclusive counts inconclusive runs after the first answer.
	lateInconclusive int
	errStreak        int
	maxErrStreak     int
	// silentStreak counts runs in a row in which the service gave no answer, silent all
	// such runs.
	silentStreak, maxSilentStreak, silent int
	// notServed counts inconclusive runs that the deploy's version did not answer
	// (checks.Result.NotServed): news that it is not up yet, unlike the others.
	notServed int
	// answeredBefore is set when the check passed before the deploy (it has a baseline).
	answeredBefore bool
	// silentAfterAnswer counts silent runs after the first answer in the window, and
	// relapses the spells of them: a silent run after a run the service answered.
	silentAfterAnswer, relapses int
	// answeredSinceSilent is set by a run the service answered, cleared by a silent one.
	answeredSinceSilent bool
	// lastSilence is the newest silence's summary: a silent run's, or a retried attempt's.
	lastSilence string
	// first is the first run that did not pass, with its stored id (evidence for people).
	first   *checks.Result
	firstID int64
	// readyAfter is how long after the deploy's registration the first passing run ended
	// (0: none yet).
	readyAfter time.Duration
	// before is what the check was failing on when the deploy was registered (nil: it was
	// not), and asBefore counts the runs since that failed on nothing else.
	before   *failingBefore
	asBefore int
	// usual is the check's usual startup, the median of its readyAfter in the service's
	// last usualOf deploys that passed (0: too few of them), for verify.ready_slowdown.
	usual   time.Duration
	usualOf int
	// halt is the first failing run's reason to stop a rollout.
	halt string
	// why is the first reason of the runs that decide an inconclusive check.
	lastInconclusive, lastError string
}

// add counts one run.
func (t *tally) add(res *checks.Result, runID int64) {
	t.runs++
	if res.Outcome != checks.Pass && t.first == nil {
		t.first, t.firstID = res, runID
	}
	if res.Outcome != checks.Error {
		t.errStreak = 0
	}
	silent := res.Outcome == checks.Error && res.NoAnswer
	if silent {
		t.silent++
		t.silentStreak++
		t.maxSilentStreak = max(t.maxSilentStreak, t.silentStreak)
	} else {
		t.silentStreak = 0
	}
	// A run that answered on its retry after an attempt without an answer saw the service
	// go away and come back within it: a spell of its own for the loop rule.
	if silent || res.RetriedSilence != "" {
		if t.answered {
			t.silentAfterAnswer++
		}
		if t.answeredSinceSilent {
			t.relapses++
		}
		t.answeredSinceSilent = false
		t.lastSilence = res.RetriedSilence
		if silent {
			t.lastSilence = res.Summary()
		}
	}
	switch res.Outcome {
	case checks.Pass:
		t.passed++
		t.answered, t.answeredSinceSilent = true, true
	case checks.Fail:
		t.failed++
		t.answered, t.answeredSinceSilent = true, true
		if t.halt == "" {
			t.halt = res.Halt
		}
	case checks.Inconclusive:
		t.inconclusive++
		if res.NotServed {
			t.notServed++
		}
		if t.answered {
			t.lateInconclusive++
		}
		t.lastInconclusive = res.Summary()
	case checks.Error:
		t.errors++
		t.errStreak++
		t.maxErrStreak = max(t.maxErrStreak, t.errStreak)
		t.lastError = res.Summary()
	}
}

// failFast is the rule applied after every run: more failed runs than failure_limit fail
// the deploy at once, and so do more runs in a row without an answer from the service
// than consecutive_error_limit, by a check that passed before the deploy, and more silent
// runs than failure_limit in two spells or more after the service first answered. It
// returns "" while the window goes on.
func failFast(check string, t *tally, limits configs.Verify, last *checks.Result) (status, reason string) {
	if errLimit := errorLimit(limits); last.NoAnswer && t.answeredBefore && t.silentStreak > errLimit {
		return store.StatusFailed, fmt.Sprintf("%s: the service stopped answering after the deploy: no answer in %d %s in a row "+
			"(consecutive_error_limit %d), where it passed before the deploy: %s", check, t.silentStreak,
			plural(t.silentStreak, "run"), errLimit, last.Summary())
	}
	if (last.NoAnswer || last.RetriedSilence != "") && t.answeredBefore && t.relapses >= 2 && t.silentAfterAnswer > limits.FailureLimit {
		return store.StatusFailed, fmt.Sprintf("%s: the service keeps going away after the deploy: it answered, then gave no answer, "+
			"%d times (%d %s without an answer after its first, failure_limit %d), where it passed before the deploy: %s",
			check, t.relapses, t.silentAfterAnswer, plural(t.silentAfterAnswer, "run"), limits.FailureLimit, t.lastSilence)
	}
	if last.Outcome != checks.Fail || t.failed <= limits.FailureLimit {
		return "", ""
	}
	return store.StatusFailed, fmt.Sprintf("%s: %d failed %s (failure_limit %d): %s", check, t.failed,
		plural(t.failed, "run"), limits.FailureLimit, last.Summary())
}

// notReady is the startup rule (seed 002: a release that took far longer to start, with
// no SLA to judge it by), in two forms: a check whose runs have not passed once by its
// round due verify.ready_within or more after the deploy's registration fails the deploy,
// and so does one not passed by its round due slowdownLimit, verify.ready_slowdown times
// its usual startup. That round's run did not pass either, and says why: the old version
// still answering (served_version), the new one not yet answering, or failing within
// failure_limit. It returns "" while the check may still come up in time, and also past
// its limit while no run said anything of the new version: runs with nothing to measure
// (a query whose metrics arrive late, no baseline yet) and vigil's own errors are no
// evidence that the service is not up, and such a check is inconclusive at the window's
// end if it never answers.
func notReady(check string, t *tally, limits configs.Verify, sinceDeploy time.Duration, last *checks.Result) (status, reason string) {
	if t.passed > 0 || t.readyAfter > 0 || t.before != nil || t.failed+t.silent+t.notServed == 0 {
		return "", ""
	}
	var rule string
	if limits.ReadyWithin > 0 && sinceDeploy >= limits.ReadyWithin {
		rule = fmt.Sprintf("not ready %s after the deploy (verify.ready_within %s)", limits.ReadyWithin, limits.ReadyWithin)
	} else if slow := slowdownLimit(limits, t.usual); slow > 0 && sinceDeploy >= slow {
		rule = fmt.Sprintf("not ready %s after the deploy, far slower than usual (verify.ready_slowdown %g: it first passed %s after "+
			"the deploy, the median of the service's last %d %s that passed)", slow.Round(time.Millisecond), limits.ReadySlowdown,
			t.usual.Round(time.Millisecond), t.usualOf, plural(t.usualOf, "deploy"))
	} else {
		return "", ""
	}
	var seen []string
	for _, n := range []struct {
		count int
		what  string
	}{{t.failed, "failed"}, {t.inconclusive, "inconclusive"}, {t.errors, plural(t.errors, "error")}} {
		if n.count > 0 {
			seen = append(seen, fmt.Sprintf("%d %s", n.count, n.what))
		}
	}
	return store.StatusFailed, fmt.Sprintf("%s: %s: no run passed in %d %s (%s); the round due %s after the deploy: %s", check, rule,
		t.runs, plural(t.runs, "round"), strings.Join(seen, ", "), sinceDeploy.Round(time.Millisecond), last.Summary())
}

// slowdownLimit is how long after the registration verify.ready_slowdown finds a check not
// ready whose usual startup is usual (0: not known): the factor times that startup as
// counted from the window's first round (initial_delay is not the service's startup; a
// shorter one reads as it), and never less than one round later than usual, since rounds
// are interval apart and a startup is seen no finer. 0 when the rule is off or the check
// has no usual startup yet.
func slowdownLimit(limits configs.Verify, usual time.Duration) time.Duration {
	if limits.ReadySlowdown <= 0 || usual <= 0 {
		return 0
	}
	over := max(usual-limits.InitialDelay, 0)
	return limits.InitialDelay + max(time.Duration(float64(over)*limits.ReadySlowdown), over+limits.Interval)
}

// errorLimit is limits' consecutive_error_limit, or its default.
func errorLimit(limits configs.Verify) int {
	if limits.ConsecutiveErrorLimit != nil {
		return *limits.ConsecutiveErrorLimit
	}
	return configs.DefaultConsecutiveErrorLimit
}

// windowVerdict is the rule applied when every check has run all its rounds: passed unless
// a check gave no answer, too many late inconclusive runs, or too many errors in a row.
// order is the checks in the service's order; the first that is inconclusive names the
// reason.
func windowVerdict(order []string, tallies map[string]*tally, limits configs.Verify, rounds int) (status, reason string) {
	total := 0
	for _, name := range order {
		t := tallies[name]
		if t == nil {
			continue
		}
		total += t.runs
		if status != "" {
			continue
		}
		errLimit := errorLimit(limits)
		switch {
		case t.maxErrStreak > errLimit:
			status = store.StatusInconclusive
			reason = fmt.Sprintf("%s: vigil could not measure: %d errors in a row (consecutive_error_limit %d): %s",
				name, t.maxErrStreak, errLimit, t.lastError)
			if t.maxSilentStreak > errLimit && !t.answeredBefore {
				reason += " (no run of it passed before the deploy, so the service's silence cannot be told from a path that never worked)"
			}
		case t.asBefore > 0 && !t.answered:
			status = store.StatusInconclusive
			reason = fmt.Sprintf("%s: failing as before the deploy in %d of %d %s (its incident has been open since %s): the deploy did not end it, "+
				"and vigil does not blame the deploy for it: %s", name, t.asBefore, t.runs, plural(t.runs, "round"),
				t.before.since.UTC().Format(time.RFC3339), t.lastInconclusive)
		case t.runs > 0 && !t.answered:
			status = store.StatusInconclusive
			why := t.lastInconclusive
			if why == "" {
				why = t.lastError
			}
			reason = fmt.Sprintf("%s: no run gave an answer in %d %s (%d inconclusive, %d errors): %s",
				name, t.runs, plural(t.runs, "round"), t.inconclusive, t.errors, why)
		case t.lateInconclusive > limits.InconclusiveLimit:
			status = store.StatusInconclusive
			reason = fmt.Sprintf("%s: %d inconclusive %s after its first answer (inconclusive_limit %d): %s",
				name, t.lateInconclusive, plural(t.lateInconclusive, "run"), limits.InconclusiveLimit, t.lastInconclusive)
		}
	}
	if status != "" {
		return status, reason
	}
	return store.StatusPassed, fmt.Sprintf("%d %s, %d runs over %d %s: within limits", len(order), plural(len(order), "check"),
		total, rounds, plural(rounds, "round"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// failingBefore is what a check was failing on when a deploy was registered: the
// failures of its newest run before it (failureKey), while its incident was open.
type failingBefore struct {
	since time.Time
	keys  map[string]bool
}

// newFailingBefore is the check's failure before the deploy, from that run's reasons;
// nil when they say nothing to match.
func newFailingBefore(reasons []string, since time.Time) *failingBefore {
	if len(reasons) == 0 {
		return nil
	}
	f := &failingBefore{since: since, keys: map[string]bool{}}
	for _, r := range reasons {
		f.keys[failureKey(r)] = true
	}
	return f
}

// asBefore is res as the verdict counts it: a failed run that failed on nothing the check
// was not already failing on before the deploy becomes an inconclusive one that says so.
func (f *failingBefore) asBefore(res *checks.Result) (*checks.Result, bool) {
	if f == nil || res.Outcome != checks.Fail || len(res.Reasons) == 0 {
		return res, false
	}
	for _, r := range res.Reasons {
		if !f.keys[failureKey(r)] {
			return res, false
		}
	}
	out := *res
	out.Outcome, out.Halt = checks.Inconclusive, ""
	out.Reasons = []string{"failing as before the deploy: " + res.Summary()}
	return &out, true
}

// failureKey is what a reason says failed, without the values seen: an assertion's
// expression ("status == 200" of "status == 200 is false: status = 503"), or a kind's own
// failure with its figures written as #.
func failureKey(reason string) string {
	for _, sep := range []string{" is false", " could not be evaluated"} {
		if i := strings.Index(reason, sep); i > 0 {
			return reason[:i]
		}
	}
	var b strings.Builder
	digits := false
	for _, r := range reason {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}
