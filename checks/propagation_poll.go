package checks

// Polling one propagation reader: reads spaced start to start and backing off, answers from
// another version or from a cache's copy older than the write left out.

import (
	"context"
	"fmt"
	"time"
)

// versionNote says, for the transcript, which version showed the marker and how many
// answers from other versions were left out.
func (r *readerResult) versionNote() string {
	note := ""
	if r.version != "" {
		note = ", answered by version " + Trim(r.version, 100) + apartNote(r.version, r.want)
	}
	if r.seenCached != "" {
		note += ", from a cache (" + r.seenCached + ")"
	}
	if r.others > 0 {
		note += fmt.Sprintf("; %d answers from another version (such as %s) left out", r.others, Trim(r.other, 100))
	}
	if r.flaps > 0 {
		note += fmt.Sprintf("; it showed the marker, then did not, %d times before (a backend behind it lagged)", r.flaps)
	}
	if r.cached > 0 {
		note += fmt.Sprintf("; %d answers from a cache's copy stored before the write left out (such as %s)", r.cached, r.fromCache)
	}
	return note
}

// pollReader reads one endpoint until it shows the marker on confirm reads in a row, or ctx
// ends. Reads are spaced start to start, so a slow answer does not stretch the interval.
// Behind a balancer each read may land on another backend, and the first that has the
// marker is not every backend: a read without it after one with it starts the count over,
// and the time measured is the first read of the run of reads that held.
//
// With served_version each answer's version is read; in a deploy (want set) an answer
// from another version (as sameVersion reads them: v1.4.0 is 1.4.0+g3f2a1c) is left out, and polling goes on: through a load balancer in the
// middle of a rollout the same reader is answered by old and new pods in turn, and only
// the new ones' showing the marker measures the new version. The reader has connections of
// its own, and the one an answer from another version came on is closed: a
// connection-level balancer keeps a connection on one pod, so the next read goes out on a
// new one, which it may give to a new pod.
//
// Every read asks the caches on the way to revalidate with the origin (Cache-Control:
// no-cache, Pragma: no-cache), unless the reader sets either header itself (it then
// measures what the cache's visitors see). A copy a cache stored before the write cannot
// show the fresh marker, so without that a cache in front of a reader measured its own
// max-age, not the service's propagation. An answer without the marker from a cache that
// did not revalidate and whose copy may predate the write (cachedBeforeWrite) is left out:
// it is no read of the service. One with the marker was stored after the write and shows it.
func (p *Propagation) pollReader(ctx context.Context, r *propReader, data map[string]any, nonce string, acked time.Time, want string) (res readerResult) {
	defer func() {
		// Cut by the deadline in the middle of a run of reads that showed it: shown, and
		// no read since said otherwise.
		res.seen = res.seen || res.streak > 0
	}()
	res.want = want
	req, err := r.req.Render(data)
	if err != nil {
		res.err = err
		return res
	}
	res.last = "no answer yet"
	ctx = revalidating(ctx) // askRevalidation, in HTTPClient.Do
	_, ownCC := req.Header["Cache-Control"]
	_, ownPragma := req.Header["Pragma"]
	asked := !ownCC && !ownPragma
	client := p.client.NewSession()
	defer client.CloseIdle()
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
		resp, err := client.Do(ctx, req, nil)
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
			res.failing = true
		default:
			res.answered, res.failing, res.lastAnswer = true, false, start.Sub(acked)
			version := ""
			if p.served != nil {
				version = versionOf(p.served, resp)
			}
			if want != "" && version != "" && !sameVersion(version, want) {
				res.others++
				res.other = version
				client.CloseIdle()
				break // left out: not a read of the new version, and no measure of its interval
			}
			ok, merr := r.match.shows(resp, nonce)
			cache := cacheOf(resp.Header.Get)
			if !ok && asked && cachedBeforeWrite(cache, time.Since(acked)) {
				res.cached++
				res.fromCache = cache.from()
				break // left out: the cache's copy, not the service's answer now
			}
			res.judged++
			// Kept whole-ish and cut when shown, after redaction (Transcript.Excerpt).
			res.last = fmt.Sprintf("%d %s", resp.Status, resp.Body[:min(len(resp.Body), 4096)])
			res.cut = 0
			if resp.Truncated {
				res.cut = len(resp.Body)
			}
			if merr != nil && !mismatchNoted {
				mismatchNoted = true
				res.last = fmt.Sprintf("%d, and match %s could not be evaluated: %v", resp.Status, r.match, merr)
			}
			if resp.Status >= 500 {
				// The reader failed to answer (draining, no healthy upstream): nothing said
				// of the marker, so neither a read toward the count nor one that breaks it.
				res.serverErrors++
				break
			}
			if ok {
				if res.streak == 0 {
					res.after, res.version, res.first, res.gap = start.Sub(acked), version, res.polls, 0
					res.seenCached = ""
					if cache.cached() {
						res.seenCached = cache.from()
					}
					if !prev.IsZero() {
						res.gap = start.Sub(prev)
					}
				}
				if res.streak++; res.streak >= p.confirm {
					res.seen = true
					return res
				}
				// The next read on a new connection, which a connection-level balancer may
				// give to another backend.
				client.CloseIdle()
				break
			}
			if res.streak > 0 { // shown, then not: a backend behind the reader lacks it
				res.flaps, res.streak = res.flaps+1, 0
			}
			prev = start
		}
		next = start.Add(interval)
		interval = min(time.Duration(float64(interval)*p.factor), p.maxPoll)
	}
}

// cachedBeforeWrite: an answer from a cache (an Age, or a cache status header naming a
// hit), received since after the write's acknowledgement, whose copy may have been stored
// before it: its Age (whole seconds, rounded down) plus the second it may have lost is longer
// than since, or it gives no Age and cannot be dated.
func cachedBeforeWrite(c cacheInfo, since time.Duration) bool {
	return c.cached() && (c.age < 0 || time.Duration(c.age+1)*time.Second > since)
}
