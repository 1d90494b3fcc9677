package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
)

// promqlVars are the promql kind's variables.
var promqlVars = types.Map{
	"value":  types.Float64,
	"values": types.TypeOf(map[string]float64{}),
	"series": types.Int,
}

// promStrings are a query's string literals, and promGuarded finds its and/unless
// operators once they are blanked (a label value "and" is not one).
var (
	promStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promGuarded = regexp.MustCompile(`(?i)\b(?:and|unless)\b\s*(?:[(\w]|$)`)
)

// promMaxBytes caps a query's answer: more than this is a query that should aggregate.
const promMaxBytes = 16 << 20

// PromQL is the promql kind: one instant query against a Prometheus HTTP API
// (/api/v1/query). An empty result is inconclusive (nothing to judge), an unreachable
// server or a query Prometheus rejects is an error (vigil could not measure).
type PromQL struct {
	client   *HTTPClient
	endpoint string
	query    *deployQuery
	window   time.Duration // the longest {{ .Window }}
	delay    time.Duration // evaluation_delay: the query is evaluated this long before the run
	header   http.Header
	auth     configs.Auth
	timeout  time.Duration
	now      func() time.Time // vigil's clock
	skew     atomic.Int64     // Prometheus's clock minus vigil's, as last measured beyond promSkewSlack (ns)
}

// PromSample is one element of an instant query's result.
type PromSample struct {
	Labels map[string]string
	Value  float64
}

// PromResult is an instant query's result: a vector, or a scalar as one unlabelled sample,
// with Prometheus's warnings and info-level notes.
type PromResult struct {
	Type     string
	Samples  []PromSample
	Warnings []string
	Infos    []string
}

// ParsePromResponse reads a /api/v1/query answer, given its HTTP status. A query error
// from Prometheus comes back as an error with Prometheus's own message.
func ParsePromResponse(status int, body []byte) (*PromResult, error) {
	var r struct {
		Status    string   `json:"status"`
		ErrorType string   `json:"errorType"`
		Error     string   `json:"error"`
		Warnings  []string `json:"warnings"`
		Infos     []string `json:"infos"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	// Prometheus answers "success" or "error"; any other JSON is another API behind the
	// URL (a proxy's login or health answer), not a query Prometheus rejected.
	if err := json.Unmarshal(body, &r); err != nil || (r.Status != "success" && r.Status != "error") {
		if status != http.StatusOK {
			return nil, fmt.Errorf("answered %d: %s", status, Trim(strings.TrimSpace(string(body)), 300))
		}
		return nil, fmt.Errorf("the answer is not Prometheus's query API (is the server URL right?): %s", Trim(strings.TrimSpace(string(body)), 200))
	}
	if r.Status != "success" {
		msg := r.Error
		if msg == "" {
			msg = "no message"
		}
		return nil, fmt.Errorf("the query was rejected by Prometheus (%s): %s", r.ErrorType, msg)
	}
	out := &PromResult{Type: r.Data.ResultType, Warnings: r.Warnings, Infos: r.Infos}
	switch r.Data.ResultType {
	case "scalar":
		v, err := promValue(r.Data.Result)
		if err != nil {
			return nil, fmt.Errorf("scalar result: %w", err)
		}
		out.Samples = []PromSample{{Labels: map[string]string{}, Value: v}}
	case "vector":
		var vec []struct {
			Metric    map[string]string `json:"metric"`
			Value     json.RawMessage   `json:"value"`
			Histogram json.RawMessage   `json:"histogram"`
		}
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("vector result is malformed: %v", err)
		}
		for i, s := range vec {
			if s.Value == nil && s.Histogram != nil {
				return nil, fmt.Errorf("series %d is a native histogram, not a number: ask for one, such as histogram_quantile(0.99, ...), histogram_count(...) or histogram_sum(...)", i)
			}
			v, err := promValue(s.Value)
			if err != nil {
				return nil, fmt.Errorf("series %d: %w", i, err)
			}
			if s.Metric == nil {
				s.Metric = map[string]string{}
			}
			out.Samples = append(out.Samples, PromSample{Labels: s.Metric, Value: v})
		}
	case "matrix":
		return nil, fmt.Errorf("the query returned a range vector; an instant query needs an instant vector or a scalar: drop the [range] or wrap it in a function such as rate(...[5m])")
	case "string":
		return nil, fmt.Errorf("the query returned a string; write one that returns a number")
	default:
		return nil, fmt.Errorf("unknown result type %q", r.Data.ResultType)
	}
	return out, nil
}

// promValue reads [<unix time>, "<value>"].
func promValue(raw json.RawMessage) (float64, error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, fmt.Errorf("want [time, \"value\"], got %s", Trim(string(raw), 60))
	}
	var s string
	if err := json.Unmarshal(pair[1], &s); err != nil {
		return 0, fmt.Errorf("value %s is not a quoted number", Trim(string(pair[1]), 40))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number", Trim(s, 40))
	}
	return v, nil
}

// Probe implements Prober.
func (p *PromQL) Probe(ctx context.Context, run *Run) error {
	// the query's time, to the millisecond Prometheus is given, and the end of {{ .Window }}:
	// a range cut to whole milliseconds from it never starts before the deploy
	at := p.now().Add(-p.delay).Truncate(time.Millisecond)
	if p.delay > 0 && !run.Since.IsZero() && !at.After(run.Since) {
		return Inconclusivef("no data yet: evaluation_delay %s puts the query at %s, before the deploy started at %s",
			p.delay, at.UTC().Format("15:04:05.000Z"), run.Since.UTC().Format("15:04:05.000Z"))
	}
	window := p.lookBack(run.Since, at)
	query, err := p.query.render(run.Deploy, window)
	if err != nil {
		return err
	}
	if p.delay > 0 {
		run.Transcript.Printf("evaluated at %s, evaluation_delay %s before the run", at.UTC().Format(time.RFC3339Nano), p.delay)
	}
	res, err := p.askAtPromTime(ctx, run.Transcript, query, at)
	if err != nil {
		return err
	}
	if err := promWarnings(res, run.Transcript); err != nil {
		return err
	}
	if len(res.Samples) == 0 {
		if promGuarded.MatchString(promStrings.ReplaceAllString(query, `""`)) {
			// A guard such as "and sum(increase(x_count[w])) >= 20" leaves no series until
			// enough requests came: `or vector(0)` would turn that into a pass on 0.
			return Inconclusivef("query %s returned no series: no data to judge (its `and`/`unless` leaves none until its condition holds, "+
				"such as enough requests for a quantile: that is no data yet, not zero, so do not add `or vector(0)`)", query)
		}
		// A bare `or vector(0)` at the end would also answer 0 while the new version's
		// metrics have not arrived (a scrape interval, a remote write's batch): a pass on no
		// data. The fallback goes to the counter that may have no series, beside one that
		// says the requests came.
		first := "is the metric scraped? check the labels"
		if p.query.readsWindow && window < p.window {
			// Right after a deploy the range cannot hold two scrapes: that comes first, or
			// the advice about labels sends someone after a query that is right.
			first = fmt.Sprintf("{{ .Window }} is %s, the time since the deploy, and rate() and increase() give no series until it holds "+
				"two samples of one, two scrapes: no data yet; if none come once it is longer than two scrape intervals, is the "+
				"metric scraped? check the labels", promDuration(window))
		}
		return Inconclusivef("query %s returned no series: no data to judge (%s; "+
			"a labelled counter has no series until its first count, such as code=\"500\" before any error: "+
			"where none means zero, give the fallback to that counter and keep a series that says the data came, "+
			"(sum(rate(errors[w])) or vector(0)) / sum(rate(requests[w])), or sum(rate(errors[w])) or vector(0) and on() sum(rate(requests[w])) > 0; "+
			"a bare `or vector(0)` at the end passes on metrics that have not arrived yet)", query, first)
	}
	if allNaN(res.Samples) {
		// 0/0: an error ratio over a window with no requests (new pods not yet in the load
		// balancer, a quiet hour). Nothing to judge, as with no series; read as a number it
		// would fail every threshold and roll back a deploy nobody has used yet.
		if res.Type == "scalar" {
			// scalar() of no series or of several is NaN: in a rollout, the old and new
			// pods' series beside each other.
			return Inconclusivef("query %s returned NaN: no data to judge (a ratio of rates over a window with no requests is 0/0, "+
				"and scalar() of anything but one series is NaN: in a rollout the old and new pods' series are both there for a while; aggregate inside it, scalar(max(...)))", query)
		}
		return Inconclusivef("query %s returned NaN for every series (%d): no data to judge (a ratio of rates over a window with no requests is 0/0)", query, len(res.Samples))
	}
	values := make(map[string]float64, len(res.Samples))
	for _, s := range res.Samples {
		values[formatLabels(s.Labels["__name__"], s.Labels)] = s.Value
	}
	run.Vars["values"] = values
	run.Vars["series"] = len(res.Samples)
	if len(res.Samples) == 1 {
		run.Vars["value"] = res.Samples[0].Value
	} else {
		// Not measured, so not judged: the run is inconclusive, never failed on the shape
		// of the query. In a rollout the count of series changes under the query's author:
		// the old pods' and the new pods' are both there for a while, and a check of a
		// service's one series would roll a healthy release back at its first round.
		run.Vars["value"] = math.NaN()
		run.Unmeasured(fmt.Sprintf("the query returned %d series, so there is no single value (in a rollout, the old and new pods' series are both there for a while): "+
			"aggregate it (max(...), sum(...)) or read values", len(res.Samples)), "value")
	}
	run.Transcript.Printf("%s: %d series: %s", res.Type, len(res.Samples), formatValue(values))
	return nil
}

// ask runs query at time at (Prometheus's clock) and returns the result and the answer's
// Date header with the moment its headers came (zero when there is none).
func (p *PromQL) ask(ctx context.Context, t *Transcript, query string, at time.Time) (*PromResult, promDate, error) {
	form := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if dl, ok := ctx.Deadline(); ok {
		// Tell Prometheus when vigil stops waiting, so it stops evaluating too.
		if left := time.Until(dl); left > 0 {
			form.Set("timeout", strconv.FormatInt(max(left.Milliseconds(), 1), 10)+"ms")
		}
	}
	h := p.header.Clone()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	req := &Request{Method: http.MethodPost, URL: p.endpoint, Header: h, Body: form.Encode(), Timeout: p.timeout,
		Auth: p.auth, MaxBodyBytes: promMaxBytes, FollowRedirects: true}
	t.Printf("query: %s", query)
	resp, err := p.client.Do(ctx, req, t)
	if err != nil {
		return nil, promDate{}, fmt.Errorf("could not query Prometheus: %w", err)
	}
	// The Date header was written as the answer began: compare it with when its headers
	// came, not with the end of a body that took seconds.
	date := promDate{read: p.now().Add(-max(resp.Timings.Total-resp.Timings.TTFB, 0))}
	date.date, _ = http.ParseTime(resp.Header.Get("Date"))
	if resp.Truncated {
		return nil, date, fmt.Errorf("the Prometheus API at %s answered more than %d bytes; aggregate the query (sum by, max, topk)", p.endpoint, promMaxBytes)
	}
	res, err := ParsePromResponse(resp.Status, resp.Body)
	if err != nil {
		return nil, date, fmt.Errorf("the Prometheus API at %s: %w", p.endpoint, err)
	}
	return res, date, nil
}

// promWarnings writes Prometheus's warnings and notes to the transcript, and returns an
// error when a warning says the result cannot be judged. Prometheus warns of "errors that
// do not inhibit the request execution": a remote read that failed, a Thanos store or a
// Mimir ingester that did not answer, and it answers with what it could reach. The part
// missing may be the new pods': a max, a ratio, a count over the rest passes a deploy it
// should fail (or fails one it should pass). A PromQL warning (a histogram without its le
// label, a quantile outside 0..1) says the number itself is wrong. Info-level notes ("PromQL
// info: metric might not be a counter"), which Prometheus 2.50 and 2.51 sent among the
// warnings and later sends apart, are only written down.
func promWarnings(res *PromResult, t *Transcript) error {
	var warns []string
	for _, w := range res.Warnings {
		if strings.HasPrefix(w, "PromQL info:") {
			t.Printf("note from Prometheus: %s", w)
			continue
		}
		t.Printf("warning from Prometheus: %s", w)
		warns = append(warns, w)
	}
	for _, w := range res.Infos {
		t.Printf("note from Prometheus: %s", w)
	}
	if len(warns) == 0 {
		return nil
	}
	return fmt.Errorf("the answer came with a warning from Prometheus, so the result may be partial or wrong, and it is not judged: %s",
		Trim(strings.Join(warns, "; "), 500))
}

// lookBack is what {{ .Window }} stands for in a query evaluated at now: the configured
// window, or, in a verification (since set: the deploy's start), the time since the deploy
// started when that is shorter, so that a rate over it counts nothing from before the deploy. Right after
// the deploy it is too short to hold two scrapes: rate() has no series to give, and the
// run is inconclusive, no data yet, until it does.
func (p *PromQL) lookBack(since, now time.Time) time.Duration {
	if !since.IsZero() && now.Sub(since) < p.window {
		return now.Sub(since)
	}
	return p.window
}

// allNaN reports whether every sample is NaN.
func allNaN(samples []PromSample) bool {
	for _, s := range samples {
		if !math.IsNaN(s.Value) {
			return false
		}
	}
	return true
}

// promqlKind registers the promql kind (kinds.go).
type promqlKind struct{}

func (promqlKind) vars() types.Map { return promqlVars }

func (promqlKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.PromQLSpec)
	endpoint := strings.TrimRight(s.Server, "/")
	if !strings.HasSuffix(endpoint, "/api/v1/query") {
		endpoint += "/api/v1/query"
	}
	query, err := compileDeployQuery(s.Query)
	if err != nil {
		b.errf(c.Path()+".query", "a query can name the deploy it verifies, "+deployQueryFields+" (empty outside a deploy), e.g. {version=\"{{ .Deploy.Version }}\"}, and read .Window, the range since the deploy", "%v", err)
		return nil
	}
	if s.Window != 0 && !query.readsWindow {
		b.errf(c.Path()+".window", "read it in the query, e.g. rate(http_requests_total[{{ .Window }}]), or remove window", "window is set, and the query does not read {{ .Window }}")
		return nil
	}
	window := s.Window
	if window == 0 {
		window = 5 * time.Minute
	}
	return &PromQL{client: b.deps.HTTP, endpoint: endpoint, query: query, window: window, delay: s.EvaluationDelay, header: headerOf(s.Headers), auth: s.Auth, timeout: c.Timeout, now: time.Now}
}
