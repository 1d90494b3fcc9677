package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/tidwall/gjson"
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

// readMatchVars are what a reader's match.expr sees.
var readMatchVars = types.Map{
	"status":  types.Int,
	"body":    types.String,
	"json":    types.Any,
	"headers": types.TypeOf(map[string]string{}),
	"nonce":   types.String,
}

// cleanupGrace bounds the cleanup request when the run's deadline has already passed.
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
}

type propReader struct {
	name  string
	req   *requestTemplate
	match *readMatcher
}

// readMatcher decides whether a read response shows the marker.
type readMatcher struct {
	contains *template.Template // rendered with {{ .Nonce }}
	literal  string             // contains without a template
	path     string             // gjson path whose value (or an element of it) equals the nonce
	program  *vm.Program        // expr over readMatchVars
	source   string
}

func (m *readMatcher) String() string { return m.source }

// shows reports whether resp shows nonce.
func (m *readMatcher) shows(resp *Response, nonce string) (bool, error) {
	switch {
	case m.contains != nil:
		var b strings.Builder
		if err := m.contains.Execute(&b, map[string]any{"Nonce": nonce}); err != nil {
			return false, err
		}
		return bytes.Contains(resp.Body, []byte(b.String())), nil
	case m.literal != "":
		return bytes.Contains(resp.Body, []byte(m.literal)), nil
	case m.path != "":
		return gjsonHas(gjson.GetBytes(resp.Body, m.path), nonce, 0), nil
	case m.program != nil:
		out, err := expr.Run(m.program, map[string]any{"status": resp.Status, "body": string(resp.Body),
			"json": resp.JSON, "headers": flattenHeaders(resp.Header), "nonce": nonce})
		if err != nil {
			return false, err
		}
		ok, _ := out.(bool)
		return ok, nil
	}
	return bytes.Contains(resp.Body, []byte(nonce)), nil
}

// gjsonHas reports whether r is the nonce, or an array (from a # query) holding it.
func gjsonHas(r gjson.Result, nonce string, depth int) bool {
	if r.IsArray() && depth < 4 {
		found := false
		r.ForEach(func(_, v gjson.Result) bool {
			found = gjsonHas(v, nonce, depth+1)
			return !found
		})
		return found
	}
	return r.Exists() && r.Type == gjson.String && r.Str == nonce
}

// readerResult is what polling one reader found.
type readerResult struct {
	seen     bool
	after    time.Duration // from the write's acknowledgement to the start of the read that showed it
	gap      time.Duration // between that read and the one before it: the measurement's resolution
	polls    int
	answered bool // at least one HTTP response
	// unanswered is set while its last read had no answer from the service (refused,
	// dropped, none before the run's deadline), not vigil's own trouble (noAnswer).
	unanswered bool
	last       string
	err        error // rendering failed: not worth polling
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
	resp, err := p.client.Do(ctx, wreq, run.Transcript)
	if err != nil {
		return targetFault(fmt.Errorf("write: %w", err))
	}
	acked := time.Now()
	run.Vars["write_status"] = resp.Status
	run.Vars["write_ms"] = ms(resp.Timings.Total)
	defer p.clean(ctx, data, run.Transcript)
	if resp.Status >= 300 {
		run.Failf("the write %s %s answered %d, so there is no marker to wait for: %s", wreq.Method, wreq.URL, resp.Status, run.Transcript.Excerpt(string(resp.Body), 200))
		return nil
	}

	results := make([]readerResult, len(p.readers))
	var wg sync.WaitGroup
	for i, r := range p.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = p.pollReader(ctx, r, data, nonce, acked)
		}()
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("cancelled while waiting for the readers")
	}

	waited := time.Since(acked)
	readers := map[string]float64{}
	var stale, silent []string
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
			if res.polls == 1 {
				run.Transcript.Printf("reader %s showed the marker on the first read, %s after the write", r.name, round(res.after))
			} else {
				run.Transcript.Printf("reader %s showed the marker %s after the write (read %d; the read before started %s earlier)",
					r.name, round(res.after), res.polls, round(res.gap))
			}
		case !res.answered:
			silent = append(silent, fmt.Sprintf("%s (%s)", r.name, res.last))
			unanswered = unanswered && res.unanswered
		default:
			readers[r.name] = ms(waited)
			slowest = waited
			stale = append(stale, r.name)
			run.Transcript.Printf("reader %s never showed the marker in %d reads over %s; last answer: %s", r.name, res.polls, round(waited), run.Transcript.Excerpt(res.last, 124))
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
		run.Failf("%d of %d readers never showed the marker within %s: %s", len(stale), len(p.readers), round(waited), list)
		run.Explain("stale", "never showed the marker: "+list)
		run.Explain("propagation_ms", "a lower bound: "+list+" never showed the marker; vigil stopped waiting at the timeout")
	}
	return nil
}

// pollReader reads one endpoint until it shows the marker or ctx ends. Reads are spaced
// start to start, so a slow answer does not stretch the interval.
func (p *Propagation) pollReader(ctx context.Context, r *propReader, data map[string]any, nonce string, acked time.Time) readerResult {
	var res readerResult
	req, err := r.req.Render(data)
	if err != nil {
		res.err = err
		return res
	}
	res.last = "no answer yet"
	interval := p.poll
	next := acked
	var prev time.Time
	var mismatchNoted bool
	for {
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return res
			case <-t.C:
			}
		}
		start := time.Now()
		resp, err := p.client.Do(ctx, req, nil)
		if err != nil && ctx.Err() != nil {
			// Cut by the run's deadline: not the reader's answer, unless it is the first
			// read, sent and never answered (a hung reader).
			if res.polls == 0 {
				res.unanswered, res.last = true, "the first read had no answer before the run's deadline"
			}
			return res
		}
		res.polls++
		switch {
		case err != nil:
			res.last = err.Error()
			res.unanswered = gaveNoAnswer(err)
		default:
			res.answered = true
			// Kept whole-ish and cut when shown, after redaction (Transcript.Excerpt).
			res.last = fmt.Sprintf("%d %s", resp.Status, resp.Body[:min(len(resp.Body), 4096)])
			ok, merr := r.match.shows(resp, nonce)
			if merr != nil && !mismatchNoted {
				mismatchNoted = true
				res.last = fmt.Sprintf("%d, and match %s could not be evaluated: %v", resp.Status, r.match, merr)
			}
			if ok {
				res.seen, res.after = true, start.Sub(acked)
				if !prev.IsZero() {
					res.gap = start.Sub(prev)
				}
				return res
			}
		}
		prev = start
		next = start.Add(interval)
		interval = min(time.Duration(float64(interval)*p.factor), p.maxPoll)
	}
}

// clean sends the cleanup request, if any. It runs even when the deadline has passed, with
// a short grace of its own, so a timed-out run does not leave its marker behind.
func (p *Propagation) clean(ctx context.Context, data map[string]any, t *Transcript) {
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
	resp, err := p.client.Do(ctx, req, t)
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
		if ms, ok := r.Vars["propagation_ms"].(float64); ok && r.Outcome != Error {
			seconds.WithLabelValues(r.Check).Observe(ms / 1000)
		}
	}}
}

func (propagationKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.PropagationSpec)
	p := c.Path()
	known := []string{"Nonce"}
	ok := true
	pr := &Propagation{client: b.deps.HTTP, poll: s.Poll, maxPoll: s.Backoff.Max, factor: s.Backoff.Factor}
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

// readMatch compiles a reader's match; nil when it is bad (reported through b).
func (b *builder) readMatch(path string, m configs.ReadMatch) *readMatcher {
	switch {
	case m.Contains != "":
		t, err := compileTemplate("contains", m.Contains)
		if err != nil {
			b.errf(path+".contains", "templates look like {{ .Nonce }}", "%v", err)
			return nil
		}
		if t != nil {
			for _, f := range templateFields(t) {
				if f != "Nonce" {
					b.errf(path+".contains", "only {{ .Nonce }} is available here", "template reads .%s", f)
					return nil
				}
			}
		}
		return &readMatcher{contains: t, literal: m.Contains, source: "contains " + m.Contains}
	case m.Path != "":
		return &readMatcher{path: m.Path, source: "path " + m.Path}
	case m.Expr != "":
		program, err := expr.Compile(m.Expr, expr.Env(readMatchVars), expr.AsBool())
		if err != nil {
			b.errf(path+".expr", "variables: body, json, status, headers, nonce; e.g. any(json.items, .id == nonce)", "%v",
				explainCompileError(err, readMatchVars))
			return nil
		}
		return &readMatcher{program: program, source: "expr " + m.Expr}
	}
	return &readMatcher{source: "body contains the marker"}
}
