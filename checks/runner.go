package checks

import (
	"context"

	"strconv"
	"sync"
	"time"

	"github.com/vigil-monitor/vigil/internal/backoff"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Retry is how error outcomes are retried. Only errors are retried: a fail is an answer.
type Retry struct {
	Attempts int           // extra attempts after the first
	Backoff  time.Duration // first wait; doubles each time, with jitter
	Max      time.Duration // longest wait
}

// defaultBackoff is the first wait before a retry.
const defaultBackoff = 500 * time.Millisecond

// RunWithRetries runs c, retrying error outcomes. The result says how many attempts it
// took and keeps the earlier errors in its transcript. With tracing on the run is a span
// ("check NAME", the attempts' requests its children) whose trace id the result carries;
// under a verification's round span it is part of the deploy's trace, otherwise a trace
// of its own.
func RunWithRetries(ctx context.Context, c *Check, in Input, retry Retry) (res *Result) {
	if c.tracer != nil {
		var span trace.Span
		ctx, span = c.tracer.Start(ctx, "check "+c.Name, trace.WithAttributes(
			attribute.String("vigil.check", c.Name), attribute.String("vigil.kind", c.Kind)))
		if in.Deploy != nil {
			span.SetAttributes(attribute.String("deploy.id", in.Deploy.ID), attribute.String("deploy.service", in.Deploy.Service),
				attribute.String("deploy.version", in.Deploy.Version))
		}
		defer func() {
			span.SetAttributes(attribute.String("vigil.outcome", string(res.Outcome)), attribute.Int("vigil.attempts", res.Attempts))
			if res.Outcome != Pass {
				span.SetStatus(codes.Error, res.Summary())
			}
			span.End()
		}()
	}
	if retry.Backoff <= 0 {
		retry.Backoff = defaultBackoff
	}
	if retry.Max <= 0 {
		retry.Max = 5 * time.Second
	}
	var earlier []string
	silence := ""
	policy := backoff.Policy{First: retry.Backoff, Max: retry.Max, Jitter: true}
	for attempt := 1; ; attempt++ {
		res := c.Run(ctx, in)
		res.Attempts = attempt
		res.RetriedSilence = silence
		if res.Outcome != Error || attempt > retry.Attempts || ctx.Err() != nil {
			if len(earlier) > 0 {
				res.Transcript = append(earlier, res.Transcript...)
			}
			return res
		}
		earlier = append(earlier, "!! attempt "+strconv.Itoa(attempt)+" ended in error: "+res.Summary()+"; retrying")
		if res.NoAnswer {
			silence = res.Summary()
		}
		t := time.NewTimer(policy.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			res.Transcript = append(earlier, res.Transcript...)
			return res
		case <-t.C:
		}
	}
}

// RunAll runs checks with at most concurrency at once and returns results in the checks'
// order. onStart and onDone (either may be nil) report progress; calls are serialised.
func RunAll(ctx context.Context, list []*Check, concurrency int, in func(*Check) Input, retries func(*Check) Retry,
	onStart func(*Check), onDone func(*Check, *Result)) []*Result {
	if concurrency < 1 {
		concurrency = 1
	}
	results := make([]*Result, len(list))
	sem := make(chan struct{}, concurrency)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range list {
		acquired := false
		select {
		case sem <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			// Interrupted (Ctrl-C, SIGTERM): the rest are not started, and say so (they
			// were started with the cancelled context and reported as errors).
			if acquired {
				<-sem
			}
			res := &Result{Check: c.Name, Kind: c.Kind, Outcome: Error, NotRun: true, Vars: map[string]any{},
				Reasons: []string{"not run: interrupted before it started"}, Started: time.Now()}
			results[i] = res
			if onDone != nil {
				mu.Lock()
				onDone(c, res)
				mu.Unlock()
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if onStart != nil {
				mu.Lock()
				onStart(c)
				mu.Unlock()
			}
			var input Input
			if in != nil {
				input = in(c)
			}
			var r Retry
			if retries != nil {
				r = retries(c)
			}
			res := RunWithRetries(ctx, c, input, r)
			results[i] = res
			if onDone != nil {
				mu.Lock()
				onDone(c, res)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}
