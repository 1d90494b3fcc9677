package checks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
)

// slaVars are the sla kind's variables.
var slaVars = types.Map{
	"p50_ms":     types.Float64,
	"p90_ms":     types.Float64,
	"p95_ms":     types.Float64,
	"p99_ms":     types.Float64,
	"max_ms":     types.Float64,
	"min_ms":     types.Float64,
	"mean_ms":    types.Float64,
	"error_rate": types.Float64,
	"rps":        types.Float64,
	"statuses":   types.TypeOf(map[string]int{}),
	"requests":   types.Int,
	"errors":     types.Int,
	"retried":    types.Int,
	// cached counts the answers that came out of a cache (an Age above 0, a cache status
	// header naming a hit); cached_before_deploy, in a verification, those a cache may
	// have stored before the deploy was registered (sla_cache.go).
	"cached":               types.Int,
	"cached_before_deploy": types.Int,
}

// Keys of statuses for requests that got no HTTP answer.
const (
	slaTimeout = "timeout"  // no answer before the request's timeout or max_duration
	slaError   = "error"    // connection refused, reset, ...
	slaNotSent = "not_sent" // with a rate: due, but the burst ended before a worker was free
)

// SLA is the sla kind, for releases that are fine at one client and unusable at fifty (a
// pool a blocking call exhausts): a bounded burst of one request, with latency
// percentiles, an error rate and the statuses seen. Without a rate, `concurrency` workers
// send back to back (a closed loop: fine for "is it usable at 50 clients"). With a rate,
// request i is due at start + i/rate and its latency counts from then, not from when a
// worker got round to sending it: a server that stalls cannot hide the queue it causes
// (no coordinated omission).
type SLA struct {
	client      *HTTPClient
	req         *requestTemplate
	requests    int
	concurrency int
	rate        float64
	maxDuration time.Duration
	okStatus    []int
	served      *configs.ServedVersion
}

type slaSample struct {
	sent    bool
	latency time.Duration
	key     string // status code, or one of slaTimeout, slaError, slaNotSent
	ok      bool
	err     error
	// other is the version that answered when it is not the deploy's (served_version, as
	// sameVersion reads them): the sample is left out of the figures. apart is the version
	// that answered when it is the deploy's written apart (1.4.0+g3f2a1c for v1.4.0).
	other, apart string
	// retried counts the times the request was sent again after a connection closed
	// without an answer (Response.Retried).
	retried int
	// cache is what the answer said of a cache in front of the service; before, in a
	// verification, that a cache may have stored it before the deploy (sla_cache.go).
	cache  cacheInfo
	before bool
	// cut is set when the burst's end (max_duration, or the run's deadline) stopped the
	// request in flight, or found it due and not sent: vigil's limit, not the service's
	// answer (see summarise).
	cut bool
}

// due is when request i is scheduled to start; start itself without a rate.
func (s *SLA) due(start time.Time, i int) time.Time {
	if s.rate <= 0 {
		return start
	}
	return start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
}

// Probe implements Prober.
func (s *SLA) Probe(ctx context.Context, run *Run) error {
	if run.Deploy != nil {
		ctx = revalidating(ctx) // caches asked to revalidate (http_cache.go)
	}
	burst, cancel := context.WithTimeout(ctx, s.maxDuration)
	defer cancel()
	samples := make([]slaSample, s.requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(s.concurrency, s.requests) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A worker is one client: a connection of its own, opened in this burst and
			// closed at its end. Behind a connection-level balancer (kube-proxy, a
			// network load balancer) a connection stays on the pod it was given,
			// draining or not: bursts that reused the last one's connections measured
			// the same pods run after run (in a deploy's later rounds, the old ones),
			// and one shared transport put a whole HTTPS burst on one HTTP/2
			// connection, one pod, or redialled past its 64 idle connections a host.
			client := s.client.NewSession()
			defer client.CloseIdle()
			for {
				i := int(next.Add(1) - 1)
				if i >= s.requests || burst.Err() != nil {
					return
				}
				begin := time.Now()
				if s.rate > 0 {
					begin = s.due(start, i)
					if !waitUntil(burst, begin) {
						return
					}
				}
				samples[i] = s.one(burst, client, run, i, begin)
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("cancelled during the burst")
	}
	if s.rate > 0 {
		// Due before the burst ended but never sent: the target was too slow to take them.
		// They count, with the time they waited, or the queue would vanish from the numbers.
		for i := range samples {
			if !samples[i].sent && !s.due(start, i).After(end) {
				samples[i] = slaSample{sent: true, latency: end.Sub(s.due(start, i)), key: slaNotSent, cut: true}
			}
		}
	}
	return s.summarise(run, samples, end.Sub(start))
}

// one sends request i and measures it from begin.
func (s *SLA) one(ctx context.Context, client *HTTPClient, run *Run, i int, begin time.Time) slaSample {
	req, err := s.req.Render(s.req.nonceData())
	if err != nil {
		return slaSample{sent: true, key: slaError, err: err}
	}
	var t *Transcript
	if i == 0 {
		t = run.Transcript // the first exchange in full; the rest as a summary
	}
	resp, err := client.Do(ctx, req, t)
	out := slaSample{sent: true, latency: time.Since(begin)}
	switch {
	case err != nil && ctx.Err() != nil:
		// The burst ended with the request in flight: its own timeout (which would have
		// said "within 20s") did not run out, vigil's did.
		out.key, out.cut = slaTimeout, true
		out.err = fmt.Errorf("%s %s: no answer after %s, when the burst ended (max_duration %s): %w",
			req.Method, req.URL, round(out.latency), s.maxDuration, errNoAnswerInTime)
	case err != nil && strings.Contains(err.Error(), "timed out"):
		out.key, out.err = slaTimeout, err
	case err != nil:
		out.key, out.err = slaError, err
	default:
		out.key = strconv.Itoa(resp.Status)
		out.ok = s.isOK(resp.Status)
		out.retried = resp.Retried
		named := ""
		if s.served != nil && run.Deploy != nil && run.Deploy.Version != "" {
			switch named = versionOf(s.served, resp); {
			case named == "" || named == run.Deploy.Version:
			case sameVersion(named, run.Deploy.Version):
				out.apart = named
			default:
				out.other = named
			}
		}
		out.cache = cacheOf(resp.Header.Get)
		// A copy that names the deploy's version is the new version's, however old (as for http).
		out.before = named == "" && out.cache.storedBefore(run.Deploy, time.Now())
	}
	return out
}

func (s *SLA) isOK(status int) bool {
	if len(s.okStatus) == 0 {
		return status >= 200 && status < 400
	}
	return slices.Contains(s.okStatus, status)
}

// summarise turns the samples into variables.
func (s *SLA) summarise(run *Run, samples []slaSample, elapsed time.Duration) error {
	var lat []float64
	statuses := map[string]int{}
	var errs, answered, others, unanswered, retried, sent, cut int
	hits := cacheHits{verifying: run.Deploy != nil}
	var firstErrs []string
	other, apart := "", ""
	apartN := 0
	// A request the burst's end cut (or found due and not sent) is known only to take
	// longer than it had waited. Waiting longer than every answered request, it counts as
	// a timeout (a hang is not hidden by the burst ending on it); cut sooner, its outcome
	// is unknown and it is left out: a healthy service asked for more than max_duration
	// leaves time for would otherwise fail on the requests vigil itself cut.
	var slowest time.Duration
	for _, x := range samples {
		if x.sent && x.other == "" && x.err == nil && x.key != slaNotSent && !hits.leftOut(x) {
			slowest = max(slowest, x.latency)
		}
	}
	for _, x := range samples {
		if !x.sent {
			continue
		}
		if x.key != slaNotSent {
			sent++
		}
		if x.other != "" {
			others++
			other = x.other
			continue
		}
		if x.apart != "" {
			apartN++
			apart = x.apart
		}
		if hits.count(x) {
			continue
		}
		if x.cut && x.latency <= slowest {
			cut++
			continue
		}
		lat = append(lat, ms(x.latency))
		statuses[x.key]++
		retried += x.retried
		if x.err == nil && x.key != slaNotSent {
			answered++
		}
		if gaveNoAnswer(x.err) {
			unanswered++
		}
		if !x.ok {
			errs++
			if x.err != nil && len(firstErrs) < 3 {
				firstErrs = append(firstErrs, x.err.Error())
			}
		}
	}
	n := len(lat)
	hits.setVars(run)
	if n == 0 && hits.all > 0 && hits.verifying {
		return hits.nothingMeasured(run, others)
	}
	if n == 0 && others > 0 {
		return NotServedf("all %d answers came from another version than %s (the deploy's), such as %s: the new version does not serve this yet",
			others, run.Deploy.Version, Trim(other, 100))
	}
	if n == 0 {
		return fmt.Errorf("no request was sent within max_duration %s", s.maxDuration)
	}
	if answered == 0 {
		err := fmt.Errorf("none of %d requests got an answer: %s", n, strings.Join(firstErrs, "; "))
		if unanswered == n {
			return &noAnswerError{err} // the service's silence, not vigil's
		}
		return err
	}
	sort.Float64s(lat)
	sum := 0.0
	for _, l := range lat {
		sum += l
	}
	v := run.Vars
	v["requests"] = n
	v["errors"] = errs
	v["error_rate"] = float64(errs) / float64(n)
	v["retried"] = retried
	v["statuses"] = statuses
	v["rps"] = float64(n) / math.Max(elapsed.Seconds(), 1e-6)
	v["min_ms"] = lat[0]
	v["max_ms"] = lat[n-1]
	v["mean_ms"] = sum / float64(n)
	for _, p := range []int{50, 90, 95, 99} {
		v[fmt.Sprintf("p%d_ms", p)] = Percentile(lat, float64(p))
	}
	v["duration_ms"] = ms(elapsed)

	how := fmt.Sprintf("%d requests, concurrency %d", n, s.concurrency)
	if s.rate > 0 {
		how += fmt.Sprintf(", %g/s; latency counted from each request's scheduled start", s.rate)
	}
	if sent < s.requests {
		how += fmt.Sprintf("; %d of %d requests sent before max_duration %s ended the burst", sent, s.requests, s.maxDuration)
	}
	if cut > 0 {
		how += fmt.Sprintf("; %d cut by the burst's end sooner than the slowest answer (%s) left out, their outcome unknown",
			cut, round(slowest))
	}
	if others > 0 {
		how += fmt.Sprintf("; %d answers from another version than %s (such as %s) left out", others, run.Deploy.Version, Trim(other, 100))
	}
	how += hits.leftOutNote()
	for _, p := range []string{"p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "rps"} {
		run.Explain(p, how)
	}
	for _, p := range []int{90, 95, 99} {
		// Nearest rank: below 100/(100-p) requests, pN is the maximum, one request.
		if need := 100 / (100 - p); n > 1 && n < need {
			run.Explain(fmt.Sprintf("p%d_ms", p), fmt.Sprintf("%s; p%d of fewer than %d requests is the slowest one: 1 of %d decides it", how, p, need, n))
		}
	}
	if others > 0 || cut > 0 || sent < s.requests || hits.leftOutNote() != "" {
		run.Explain("requests", how)
		run.Explain("error_rate", how) // replaced by the failures below when there are any
	}
	if errs > 0 {
		why := fmt.Sprintf("%d of %d failed: %s", errs, n, formatStatuses(statuses))
		if statuses["429"] > 0 && !s.isOK(http.StatusTooManyRequests) {
			// The burst met a rate limiter: the clients it stands for are refused too, but the
			// service behind it was not measured on those requests.
			why += "; 429 is a rate limiter refusing part of the burst, so the service behind it was not asked: " +
				"exempt vigil's requests from the limit, or lower concurrency or rate under it"
		}
		run.Explain("error_rate", why)
		run.Explain("errors", formatStatuses(statuses))
	}
	run.Transcript.Printf("%s in %s: p50 %s, p90 %s, p95 %s, p99 %s, max %s; %.1f/s; statuses %s",
		how, round(elapsed), fmtMS(v["p50_ms"]), fmtMS(v["p90_ms"]), fmtMS(v["p95_ms"]), fmtMS(v["p99_ms"]),
		fmtMS(v["max_ms"]), v["rps"], formatStatuses(statuses))
	for _, e := range firstErrs {
		run.Transcript.Printf("! %s", e)
	}
	if apartN > 0 {
		run.Transcript.Printf("served version: %d answers named %s%s: counted as the deploy's", apartN, Trim(apart, 100), apartNote(apart, run.Deploy.Version))
	}
	if retried > 0 {
		msg := fmt.Sprintf("%d requests were sent again on a new connection after a kept-alive one closed without an answer "+
			"(as browsers do, whatever the method): the service dropped them, and error_rate counts only the answer to the repeat; "+
			"assert retried == 0 to fail on it", retried)
		run.Transcript.Printf("%s", msg)
		run.Explain("retried", msg)
	}
	return nil
}

// Percentile is the nearest-rank percentile p (0-100) of sorted xs; NaN for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func fmtMS(v any) string {
	f, _ := v.(float64)
	return formatFloat(f) + "ms"
}

// waitUntil waits for t or ctx, whichever comes first; false when ctx ended.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// slaKind registers the sla kind (kinds.go).
type slaKind struct{}

func (slaKind) vars() types.Map { return slaVars }

func (slaKind) Alone() {} // its load would be measured by the checks beside it, and theirs by it

func (slaKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.SLASpec) // the request cap (allow_load) is a config rule
	req := b.request(c.Path()+".request", &s.Request, []string{"Nonce"})
	if req == nil {
		return nil
	}
	return &SLA{client: b.deps.HTTP, req: req, requests: s.Requests, concurrency: s.Concurrency, rate: s.Rate,
		maxDuration: s.MaxDuration, okStatus: s.OKStatus, served: s.ServedVersion}
}
