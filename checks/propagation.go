package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vigil-monitor/vigil/configs"
)

// propagationVars are the propagation kind's variables.
var propagationVars = types.Map{
	"propagation_ms": types.Float64,
	"readers":        types.TypeOf(map[string]float64{}),
	"stale":          types.Array(types.String),
	"write_ms":       types.Float64,
	"write_status":   types.Int,
}

// cleanupGrace is the most of a run's time kept for its cleanup (a tenth of it at most):
// the readers are polled until the run's deadline less that, so the cleanup runs within
// the timeout. A run cancelled before its cleanup (its window decided) still cleans up,
// within this much.
const cleanupGrace = 5 * time.Second

// Propagation is the propagation kind, for writes that take too long to be seen (a release
// after which updates took a minute to appear on the read replicas). It writes
// a fresh marker, then polls every reader until each shows it. Polling starts at `poll`,
// start to start, and slows by `backoff.factor` up to `backoff.max`, so the measured time is
// never later than the truth by more than the interval in effect when the marker appeared.
// The check's timeout bounds it all; readers that never showed the marker are a failure
// that names them.
type Propagation struct {
	client  *HTTPClient
	write   *requestTemplate
	readers []*propReader
	cleanup *requestTemplate
	poll    time.Duration
	maxPoll time.Duration
	factor  float64
	confirm int // reads in a row that must show the marker
	served  *configs.ServedVersion
}

type propReader struct {
	name  string
	req   *requestTemplate
	match *readMatcher
}

// readerResult is what polling one reader found.
type readerResult struct {
	seen     bool
	after    time.Duration // from the write's acknowledgement to the start of the read that showed it
	gap      time.Duration // between that read and the one before it: the measurement's resolution
	polls    int
	answered bool // at least one HTTP response
	// judged counts the answers read for the marker: in a deploy with served_version, those
	// from another version than the deploy's are left out (others, one of them other).
	judged int
	others int
	other  string
	// version is what the answer that showed the marker named (served_version); want the
	// deploy's version it was judged against ("" outside a deploy).
	version, want string
	// cached counts the answers left out as a cache's copy that may predate the write
	// (cachedBeforeWrite), fromCache what the last of them said of its cache; seenCached
	// what the answer that showed the marker said of its cache, when one gave it.
	cached int
	// streak counts the reads in a row, up to the last, that showed the marker (after and
	// gap are of the first of them, read number first); flaps counts the runs of them a
	// read without it ended.
	streak, first, flaps int
	// serverErrors counts the judged answers that were 5xx.
	serverErrors int
	fromCache    string
	seenCached   string
	// unanswered is set while its last read had no answer from the service (refused,
	// dropped, none before the run's deadline), not vigil's own trouble (noAnswer).
	unanswered bool
	// failing is set while its last read had no answer, whoever's the trouble; lastAnswer
	// is when the last read that had one started, from the write's acknowledgement.
	failing    bool
	lastAnswer time.Duration
	last       string
	// cut is set while the last answer read was cut at max_body_bytes: a marker past the
	// cut cannot be seen, and the failure says so.
	cut int
	err error // rendering failed: not worth polling
}

// Probe implements Prober.
func (p *Propagation) Probe(ctx context.Context, run *Run) error {
	nonce := newNonce()
	data := map[string]any{"Nonce": nonce}
	run.Vars["propagation_ms"] = 0.0
	run.Vars["readers"] = map[string]float64{}
	run.Vars["stale"] = []string{}
	run.Vars["write_ms"] = 0.0
	run.Vars["write_status"] = 0
	run.Transcript.Printf("-- marker %s", nonce)

	wreq, err := p.write.Render(data)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// A run opens connections of its own and closes them at its end: behind a
	// connection-level balancer a kept-alive connection stays on one pod, and a deploy's
	// later rounds would write to and read from the pods its first round was given.
	client := p.client.NewSession()
	defer client.CloseIdle()
	resp, err := client.Do(ctx, wreq, run.Transcript)
	if err != nil {
		if mayHaveLanded(err) {
			// No answer is not no write: the marker may be stored all the same (its
			// acknowledgement lost or late), and a retried run writes another.
			p.clean(ctx, client, data, run.Transcript)
		}
		return targetFault(fmt.Errorf("write: %w", err))
	}
	acked := time.Now()
	run.Vars["write_status"] = resp.Status
	run.Vars["write_ms"] = ms(resp.Timings.Total)
	defer p.clean(ctx, client, data, run.Transcript)
	if p.served != nil {
		if err := servedBy(run, p.served, resp); err != nil {
			return NotServedf("the write: %v", err)
		}
	}
	if resp.Status >= 300 {
		run.Failf("the write %s %s answered %d, so there is no marker to wait for: %s", wreq.Method, wreq.URL, resp.Status, run.Transcript.Excerpt(string(resp.Body), 200))
		return nil
	}

	pollCtx := ctx
	if dl, ok := ctx.Deadline(); ok && p.cleanup != nil {
		var cancel context.CancelFunc
		pollCtx, cancel = context.WithDeadline(ctx, dl.Add(-min(cleanupGrace, time.Until(dl)/10)))
		defer cancel()
	}
	results := make([]readerResult, len(p.readers))
	var wg sync.WaitGroup
	for i, r := range p.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.pollReader(pollCtx, r, data, nonce, acked, deployVersion(run, p.served))
		}()
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("cancelled while waiting for the readers")
	}

	waited := time.Since(acked)
	readers := map[string]float64{}
	var stale, silent, oldOnly, cacheOnly, cut []string
	var slowest time.Duration
	unanswered := true // every silent reader's silence is the service's
	for i, r := range p.readers {
		res := results[i]
		switch {
		case res.err != nil:
			return fmt.Errorf("reader %s: %w", r.name, res.err)
		case res.seen:
			readers[r.name] = ms(res.after)
			slowest = max(slowest, res.after)
			switch {
			case res.first == 1:
				run.Transcript.Printf("reader %s showed the marker on the first read, %s after the write%s", r.name, round(res.after), res.versionNote())
			case res.gap == 0:
				run.Transcript.Printf("reader %s showed the marker %s after the write (read %d, the first that could have shown it)%s",
					r.name, round(res.after), res.first, res.versionNote())
			default:
				run.Transcript.Printf("reader %s showed the marker %s after the write (read %d; the last read before it that could have shown it started %s earlier)%s",
					r.name, round(res.after), res.first, round(res.gap), res.versionNote())
			}
		case !res.answered:
			silent = append(silent, fmt.Sprintf("%s (%s)", r.name, res.last))
			unanswered = unanswered && res.unanswered
		case res.judged == 0: // every answer came from another version or a cache's old copy
			if res.others > 0 {
				oldOnly = append(oldOnly, fmt.Sprintf("%s (%d answers, such as version %s)", r.name, res.others, Trim(res.other, 100)))
			}
			if res.cached > 0 {
				cacheOnly = append(cacheOnly, fmt.Sprintf("%s (%d answers, such as %s)", r.name, res.cached, res.fromCache))
			}
			by := "by another version than the deploy's"
			switch {
			case res.others == 0:
				by = "from a cache's copy stored before the write"
			case res.cached > 0:
				by = "by another version or a cache's copy stored before the write"
			}
			run.Transcript.Printf("reader %s was answered only %s in %d reads over %s%s", r.name, by, res.others+res.cached, round(waited), res.versionNote())
		case res.failing && waited-res.lastAnswer > p.maxPoll:
			// It answered, then stopped (scaled down, crashed) for longer than polling
			// ever waits between reads: what it would have shown since its last answer is
			// unknown, so "never showed the marker" is no claim to make of the time it
			// was not read. (One read lost at the end changes nothing: stale.)
			silent = append(silent, fmt.Sprintf("%s stopped answering: its last answer, %s after the write, did not show the marker; since then %s",
				r.name, round(res.lastAnswer), res.last))
			unanswered = unanswered && res.unanswered
		case res.serverErrors == res.judged:
			// Every answer it gave was a 5xx: it could not be read, which is not never
			// showing the marker.
			silent = append(silent, fmt.Sprintf("%s answered only server errors (%d reads; last: %s)", r.name, res.judged, run.Transcript.Excerpt(res.last, 200)))
			unanswered = false
		default:
			readers[r.name] = ms(waited)
			slowest = waited
			stale = append(stale, r.name)
			if res.cut > 0 {
				cut = append(cut, fmt.Sprintf("%s's answer was cut at max_body_bytes (%d bytes), and a marker past that is not seen: raise the reader's max_body_bytes, or read a page that puts the newest first", r.name, res.cut))
			}
			run.Transcript.Printf("reader %s never showed the marker in %d reads over %s%s; last answer: %s", r.name, res.judged, round(waited), res.versionNote(), run.Transcript.Excerpt(res.last, 124))
		}
	}
	if len(silent) > 0 {
		err := fmt.Errorf("no answer from %d of %d readers in %s, so propagation could not be measured: %s",
			len(silent), len(p.readers), round(waited), strings.Join(silent, "; "))
		if unanswered {
			return &noAnswerError{err}
		}
		return err
	}
	run.Vars["readers"] = readers
	run.Vars["stale"] = stale
	run.Vars["propagation_ms"] = ms(slowest)
	if len(stale) > 0 {
		list := strings.Join(stale, ", ")
		why := ""
		if len(cut) > 0 {
			why = " (" + strings.Join(cut, "; ") + ")"
		}
		run.Failf("%d of %d readers never showed the marker within %s: %s%s", len(stale), len(p.readers), round(waited), list, why)
		run.Explain("stale", "never showed the marker: "+list)
		run.Explain("propagation_ms", "a lower bound: "+list+" never showed the marker; vigil stopped waiting at the timeout")
		return nil
	}
	if len(cacheOnly) > 0 {
		why := fmt.Sprintf("%d of %d readers were answered only from a cache's copy stored before the write in %s, so what the service shows could not be read "+
			"(the cache did not revalidate on Cache-Control: no-cache: make it, or read the origin): %s", len(cacheOnly), len(p.readers), round(waited), strings.Join(cacheOnly, "; "))
		if len(oldOnly) > 0 {
			why += fmt.Sprintf("; %d were answered only by another version than %s (the deploy's): %s", len(oldOnly), run.Deploy.Version, strings.Join(oldOnly, "; "))
		}
		return Inconclusivef("%s", why)
	}
	if len(oldOnly) > 0 {
		return NotServedf("%d of %d readers were answered only by another version than %s (the deploy's) in %s, so the new version's propagation could not be measured: %s",
			len(oldOnly), len(p.readers), run.Deploy.Version, round(waited), strings.Join(oldOnly, "; "))
	}
	return nil
}

// mayHaveLanded says whether a request that got no answer may have reached the service:
// anything but a connection refused or a name that did not resolve.
func mayHaveLanded(err error) bool {
	var dns *net.DNSError
	return !errors.Is(err, syscall.ECONNREFUSED) && !errors.As(err, &dns)
}

// deployVersion is the version a run's answers are judged against: the deploy's, in a
// deploy's verification of a check with served_version; "" when every answer is judged.
func deployVersion(run *Run, sv *configs.ServedVersion) string {
	if sv == nil || run.Deploy == nil {
		return ""
	}
	return run.Deploy.Version
}

// clean sends the cleanup request, if any. It runs even when the deadline has passed, with
// a short grace of its own, so a timed-out run does not leave its marker behind.
func (p *Propagation) clean(ctx context.Context, client *HTTPClient, data map[string]any, t *Transcript) {
	if p.cleanup == nil {
		return
	}
	req, err := p.cleanup.Render(data)
	if err != nil {
		t.Printf("cleanup: %v", err)
		return
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), min(cleanupGrace, req.Timeout))
		defer cancel()
	}
	t.Printf("-- cleanup")
	resp, err := client.Do(ctx, req, t)
	switch {
	case err != nil:
		t.Printf("cleanup failed (the marker may remain): %v", err)
	case resp.Status >= 300:
		t.Printf("cleanup answered %d (the marker may remain)", resp.Status)
	}
}

// propagationKind registers the propagation kind (kinds.go).
type propagationKind struct{}

func (propagationKind) vars() types.Map { return propagationVars }

func (propagationKind) Alone() {} // it writes, then polls every reader for seconds

// Instrument implements Instrumented: how long markers took to reach every reader, in
// runs that measured it.
func (propagationKind) Instrument(in Instruments) *Recorder {
	seconds := promauto.With(in.Reg).NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_propagation_seconds",
		Help:    "Time until every reader showed a propagation check's marker.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120}}, []string{"check"})
	return &Recorder{Vecs: vecs(seconds), Observe: func(r *Result) {
		// A run that measured it: not one that erred, was inconclusive (other versions
		// answered) or failed before any reader was read (its write refused).
		readers, _ := r.Vars["readers"].(map[string]float64)
		if ms, ok := r.Vars["propagation_ms"].(float64); ok && len(readers) > 0 && (r.Outcome == Pass || r.Outcome == Fail) {
			seconds.WithLabelValues(r.Check).Observe(ms / 1000)
		}
	}}
}

func (propagationKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.PropagationSpec)
	p := c.Path()
	known := []string{"Nonce"}
	ok := true
	pr := &Propagation{client: b.deps.HTTP, poll: s.Poll, maxPoll: s.Backoff.Max, factor: s.Backoff.Factor, confirm: s.Confirm, served: s.ServedVersion}
	if pr.write = b.request(p+".write", &s.Write, known); pr.write == nil {
		ok = false
	}
	for i, r := range s.Read {
		rp := fmt.Sprintf("%s.read[%d]", p, i)
		req := b.request(rp+".request", &r.Request, known)
		m, mp := r.Match, rp+".match"
		if m == (configs.ReadMatch{}) {
			m, mp = s.Match, p+".match"
		}
		matcher := b.readMatch(mp, m)
		if req == nil || matcher == nil {
			ok = false
			continue
		}
		pr.readers = append(pr.readers, &propReader{name: r.Name, req: req, match: matcher})
	}
	if s.Cleanup != nil {
		if pr.cleanup = b.request(p+".cleanup", s.Cleanup, known); pr.cleanup == nil {
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return pr
}
