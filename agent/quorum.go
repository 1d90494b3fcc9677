package agent

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

// The quorum rules, apart from the agent that applies them: how the verdicts of the
// locations verifying a deploy combine into the deploy's verdict (verify.locations, or the
// top-level locations block). Like verdict.go they read no clock and touch no store, and
// are table-tested on their own (quorum_test.go).
//
// Each location verifies the deploy on its own window and reports passed, failed or
// inconclusive. Then:
//   - as soon as `fail` locations reported failed, the deploy fails (the others need not
//     finish);
//   - otherwise the verdict waits until every location expected reported, or until the
//     wait after the window is over (final);
//   - fewer than `min` answers (passed or failed; 0 means every location expected) make it
//     inconclusive, naming the locations that never reported and those that could not
//     judge; enough answers make it passed, saying which locations failed below the
//     quorum and which never reported.
//
// A location with several agents (replicas) has a report from each, folded into the
// location's verdict first (locationVerdict).
//
// With one location, the verdict and its reason are that location's, word for word: one
// agent behaves as it always did.

// quorumVerdict is a deploy's verdict from its locations' reports; status is "" while it
// waits for more.
type quorumVerdict struct {
	status, reason, halt string
	// from are the reports the verdict rests on: the failing ones for a failure, every
	// one otherwise.
	from []*store.LocationReport
}

func combine(d *store.Deploy, reports []*store.LocationReport, q configs.Quorum, final bool, awaited map[string][]string) quorumVerdict {
	expected := append([]string(nil), d.Locations...)
	byLoc := map[string][]*store.LocationReport{}
	for _, r := range reports {
		byLoc[r.Location] = append(byLoc[r.Location], r)
		if !slices.Contains(expected, r.Location) {
			expected = append(expected, r.Location) // a deploy from before locations, or an agent that joined late
		}
	}
	var failed, passed, unsure, failing []*store.LocationReport
	var missing []string
	for _, loc := range expected {
		r, why := locationVerdict(byLoc[loc], awaited[loc], final)
		switch {
		case r == nil:
			missing = append(missing, loc)
		case r.Status == store.StatusFailed:
			failed = append(failed, r)
			failing = append(failing, why...)
		case r.Status == store.StatusPassed:
			passed = append(passed, r)
		default:
			unsure = append(unsure, r)
		}
	}
	fail, min := max(q.Fail, 1), q.Min
	if min == 0 {
		min = len(expected)
	}
	// verbatim: one location, whose verdict is the deploy's, reason and all.
	verbatim := len(expected) == 1 && min <= 1
	if len(failed) >= fail {
		v := quorumVerdict{status: store.StatusFailed, from: failing}
		for _, r := range failing {
			if r.Halt != "" {
				v.halt = r.Halt
				break
			}
		}
		if verbatim {
			v.reason = failed[0].Reason
		} else {
			v.reason = fmt.Sprintf("failing in %d of %d locations (fail: %d): %s", len(failed), len(expected), fail, reasons(failed))
		}
		return v
	}
	if len(missing) > 0 && !final {
		return quorumVerdict{}
	}
	all := append(append(append([]*store.LocationReport(nil), passed...), failed...), unsure...)
	answered := len(passed) + len(failed)
	if answered < min {
		v := quorumVerdict{status: store.StatusInconclusive, from: all}
		switch {
		case verbatim && len(unsure) == 1:
			v.reason = unsure[0].Reason
		case verbatim:
			v.reason = fmt.Sprintf("location %s never reported within the window", missing[0])
		default:
			var why []string
			if len(expected) < min {
				why = append(why, fmt.Sprintf("only %d %s verified it (%s: those alive with the service when it was registered)",
					len(expected), plural(len(expected), "location"), strings.Join(expected, ", ")))
			}
			if len(missing) > 0 {
				why = append(why, fmt.Sprintf("%s never reported within the window", strings.Join(missing, ", ")))
			}
			for _, r := range unsure {
				why = append(why, fmt.Sprintf("%s could not judge: %s", r.Location, r.Reason))
			}
			if len(failed) > 0 {
				why = append(why, fmt.Sprintf("failing in %s, short of fail: %d", reasons(failed), fail))
			}
			v.reason = fmt.Sprintf("%d of %d locations gave an answer, %d needed (min: %s): %s", answered, len(expected), min, minText(q.Min), strings.Join(why, "; "))
		}
		return v
	}
	v := quorumVerdict{status: store.StatusPassed, from: all}
	if verbatim {
		v.reason = passed[0].Reason
		return v
	}
	v.reason = fmt.Sprintf("passed in %d of %d locations", len(passed), len(expected))
	if len(failed) > 0 {
		v.reason += fmt.Sprintf("; failing in %d, short of fail: %d: %s", len(failed), fail, reasons(failed))
	}
	for _, r := range unsure {
		v.reason += fmt.Sprintf("; %s could not judge: %s", r.Location, r.Reason)
	}
	if len(missing) > 0 {
		v.reason += fmt.Sprintf("; %s never reported within the window", strings.Join(missing, ", "))
	}
	return v
}

// locationVerdict folds the reports of one location's agents, in the order they came, into
// the location's verdict. One agent's failure fails the location at once: each agent has
// its own path to the service (a draining backend behind the load balancer), and a path
// the deploy broke is production broken. Otherwise the location waits, until the wait is
// over (final), for every agent awaited there (alive, with the service, running since
// before the deploy was registered) to report; then it passed when one of them passed, and
// is inconclusive when none could judge. It returns nil while the location has no verdict,
// and with a failure the failing reports, whose evidence and halt the deploy's verdict
// carries. A location with one agent reports that agent's verdict, word for word.
func locationVerdict(reps []*store.LocationReport, awaited []string, final bool) (*store.LocationReport, []*store.LocationReport) {
	if len(reps) == 0 {
		return nil, nil
	}
	var failed []*store.LocationReport
	var pass, unsure *store.LocationReport
	said := make([]string, 0, len(reps)+1)
	for _, r := range reps {
		switch r.Status {
		case store.StatusFailed:
			failed = append(failed, r)
		case store.StatusPassed:
			pass = cmp.Or(pass, r)
		default:
			unsure = cmp.Or(unsure, r)
		}
		said = append(said, r.Agent+" "+r.Status)
	}
	var silent []string
	for _, name := range awaited {
		if !slices.ContainsFunc(reps, func(r *store.LocationReport) bool { return r.Agent == name }) {
			silent = append(silent, name)
		}
	}
	var v *store.LocationReport
	switch {
	case len(failed) > 0:
		v = failed[0]
	case len(silent) > 0 && !final:
		return nil, nil
	default:
		v = cmp.Or(pass, unsure)
	}
	if len(reps) == 1 && len(silent) == 0 {
		return v, failed
	}
	if len(silent) > 0 {
		said = append(said, strings.Join(silent, ", ")+" never reported")
	}
	out := *v
	out.Reason = fmt.Sprintf("%s (agents: %s)", v.Reason, strings.Join(said, ", "))
	return &out, failed
}

// reasons lists reports as "location: reason; location: reason".
func reasons(list []*store.LocationReport) string {
	parts := make([]string, len(list))
	for i, r := range list {
		parts[i] = r.Location + ": " + r.Reason
	}
	return strings.Join(parts, "; ")
}

func minText(min int) string {
	if min == 0 {
		return "0, every location"
	}
	return fmt.Sprint(min)
}
