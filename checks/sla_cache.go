package checks

import (
	"fmt"
	"time"
)

// A burst behind a cache (a CDN, Varnish, nginx's proxy_cache). In a deploy's verification
// its requests ask the caches to revalidate (http_cache.go), and an answer that still comes
// out of one is left out of every figure: a copy stored before the deploy is the old
// version's, and even a copy of the new version's answer times the cache, not the service.
// A slow new version behind a CDN that ignores no-cache answered the first request in 2 s,
// and the cache the other 299 in a millisecond: p95_ms < 300 passed it. A burst answered
// by the cache alone measured nothing of the new version: inconclusive. Scheduled runs
// count what the cache answers, as visitors get it, and say how many it answered (cached).

// cacheHits counts a burst's answers from a cache.
type cacheHits struct {
	verifying bool
	// all counts the answers from a cache, before those a cache may have stored before the
	// deploy; undated, the hits among them that gave no Age.
	all, before, undated int
	// example is the first such answer's cache headers; exampleBefore, the first one of
	// before.
	example, exampleBefore cacheInfo
}

// leftOut: in a verification, x came out of a cache and is not a measure of the service.
func (h *cacheHits) leftOut(x slaSample) bool {
	return h.verifying && x.cache.cached()
}

// count records x when it came out of a cache; true when it is left out of the figures.
func (h *cacheHits) count(x slaSample) bool {
	if !x.cache.cached() {
		return false
	}
	if h.all == 0 {
		h.example = x.cache
	}
	h.all++
	if x.before {
		if h.before == 0 {
			h.exampleBefore = x.cache
		}
		h.before++
		if x.cache.age < 0 {
			h.undated++
		}
	}
	return h.leftOut(x)
}

// setVars sets cached and cached_before_deploy, and says in the transcript what the cache
// answered.
func (h *cacheHits) setVars(run *Run) {
	run.Vars["cached"] = h.all
	run.Vars["cached_before_deploy"] = h.before
	if h.all == 0 {
		return
	}
	what := "counted, as visitors get them"
	if h.verifying {
		what = "left out of every figure: a cache's answer times the cache, not the new version"
	}
	run.Transcript.Printf("%d answers came from a cache (such as %s), %d of them stored before the deploy: %s",
		h.all, h.example.from(), h.before, what)
	if h.verifying && h.before > 0 {
		run.Explain("cached_before_deploy", fmt.Sprintf("%d of %d answers from a cache were copies it may have kept from before the deploy (such as %s)",
			h.before, h.all, h.exampleBefore.from()))
	}
}

// leftOutNote is the figures' explanation of the answers left out ("" for none).
func (h *cacheHits) leftOutNote() string {
	if !h.verifying || h.all == 0 {
		return ""
	}
	return fmt.Sprintf("; %d answers from a cache (such as %s) left out, %d of them stored before the deploy",
		h.all, h.example.from(), h.before)
}

// nothingMeasured is the verdict on a verification's burst whose answers all came out of a
// cache (or from other versions, others): nothing of the new version was seen or timed.
func (h *cacheHits) nothingMeasured(run *Run, others int) error {
	also := ""
	if others > 0 {
		also = fmt.Sprintf(" (and %d answers from another version than %s)", others, run.Deploy.Version)
	}
	fix := "(the cache did not revalidate on Cache-Control: no-cache: make it, or check the origin)"
	if h.before == h.all {
		undated := ""
		if h.undated > 0 {
			undated = fmt.Sprintf(", %d of them hits with no Age to date them", h.undated)
		}
		return Inconclusivef("all %d answers came from a cache (such as %s)%s: copies stored before the deploy was registered (%s ago)%s, "+
			"so the old version's answers, not the new one's %s", h.all, h.exampleBefore.from(), also,
			roundSince(time.Since(run.Deploy.StartedAt)), undated, fix)
	}
	if h.before > 0 {
		also += fmt.Sprintf(", %d of them copies stored before the deploy", h.before)
	}
	return Inconclusivef("all %d answers came from a cache (such as %s)%s: the burst did not reach the service, so the new version's "+
		"latency and errors under load were not measured %s", h.all, h.example.from(), also, fix)
}
