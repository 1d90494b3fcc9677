package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/backoff"
)

const (
	lokiPageLimit = 1000     // entries per page; below Loki's default max_entries_limit_per_query (5000)
	lokiPageBytes = 16 << 20 // one page's body cap
	lokiMaxPages  = 1000
	// lokiRetryRoom is the least time an answer to a query asked again is given before the
	// run's deadline: less, and asking again could only end in the deadline.
	lokiRetryRoom = 500 * time.Millisecond
)

// lokiBusy paces the queries asked again of a Loki that answered 429 or 503 without a
// Retry-After that ends in time.
var lokiBusy = backoff.Policy{First: 250 * time.Millisecond, Max: 2 * time.Second, Jitter: true}

// lokiSource reads a logscan's lines from Loki's query_range API. The patterns and the
// exclude patterns are pushed into the query as line filters, so only matching lines
// travel; they are matched again here, to count them per pattern and because a proxy or
// a Loki may not apply a filter.
type lokiSource struct {
	client   *HTTPClient
	endpoint string // .../loki/api/v1/query_range
	query    *deployQuery
	patterns []string // pushed into the query as a line filter
	exclude  []string // pushed into the query as a negative line filter
	header   http.Header
	auth     configs.Auth
	timeout  time.Duration
}

func newLokiSource(client *HTTPClient, src *configs.LogSource, patterns, exclude []string, timeout time.Duration) (*lokiSource, error) {
	endpoint := strings.TrimRight(src.URL, "/")
	if !strings.HasSuffix(endpoint, "/query_range") {
		endpoint += "/loki/api/v1/query_range"
	}
	query, err := compileDeployQuery(src.Query)
	if err != nil {
		return nil, err
	}
	if query.readsWindow { // the run's interval is the query_range's start and end
		return nil, fmt.Errorf("a log query has no range for {{ .Window }}: the lines read are those since max(deploy start, now - window) already")
	}
	return &lokiSource{client: client, endpoint: endpoint, query: query, patterns: patterns, exclude: exclude, header: headerOf(src.Headers),
		auth: src.Auth, timeout: timeout}, nil
}

// lokiQuery appends a line filter matching any of patterns to a LogQL log query, and one
// leaving out lines any of exclude matches. Loki's regexes are Go's RE2, like vigil's.
func lokiQuery(query string, patterns, exclude []string) string {
	query = strings.TrimSpace(query) + " |~ " + lokiRegexp(patterns)
	if len(exclude) > 0 {
		query += " !~ " + lokiRegexp(exclude)
	}
	return query
}

// lokiRegexp is a LogQL string literal of a regex matching any of res.
func lokiRegexp(res []string) string {
	alts := make([]string, len(res))
	for i, p := range res {
		alts[i] = "(?:" + p + ")"
	}
	re := strings.Join(alts, "|")
	if strings.Contains(re, "`") {
		return strconv.Quote(re)
	}
	return "`" + re + "`"
}

// LokiEntry is one log line from a query_range answer.
type LokiEntry struct {
	TS     int64 // nanoseconds since 1970
	Stream string
	Line   string
}

// ParseLokiResponse reads a query_range answer ({"status":"success","data":{"resultType":
// "streams","result":[{"stream":{...},"values":[["<ns>","<line>"],...]}]}}).
func ParseLokiResponse(body []byte) ([]LokiEntry, error) {
	entries, _, err := parseLoki(body)
	return entries, err
}

// parseLoki is ParseLokiResponse that also returns the answer's warnings: Loki answers
// "success" with a top-level "warnings" list when it cut its answer short (a limit it
// reached, a part of the range it could not read).
func parseLoki(body []byte) ([]LokiEntry, []string, error) {
	var r struct {
		Status   string   `json:"status"`
		Error    string   `json:"error"`
		Warnings []string `json:"warnings"`
		Data     struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, fmt.Errorf("not a Loki query_range answer (%v): %s", err, Trim(string(body), 200))
	}
	if r.Status != "success" {
		if r.Error != "" {
			return nil, nil, fmt.Errorf("the Loki answer says %s: %s", r.Status, r.Error)
		}
		return nil, nil, fmt.Errorf("not a Loki query_range answer (status %q): %s", r.Status, Trim(string(body), 200))
	}
	if r.Data.ResultType != "streams" {
		return nil, nil, fmt.Errorf("the query returned %q, not log lines: use a log query ({app=\"web\"} |= \"...\"), not a metric query", r.Data.ResultType)
	}
	var streams []struct {
		Stream map[string]string   `json:"stream"`
		Values [][]json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(r.Data.Result, &streams); err != nil {
		return nil, nil, fmt.Errorf("the Loki result is not a list of streams: %v", err)
	}
	var out []LokiEntry
	for si, st := range streams {
		labels := formatLabels("", st.Stream)
		for vi, v := range st.Values {
			if len(v) < 2 {
				return nil, nil, fmt.Errorf("stream %d value %d: want [timestamp, line], got %d items", si, vi, len(v))
			}
			var ts, line string
			if err := json.Unmarshal(v[0], &ts); err != nil {
				return nil, nil, fmt.Errorf("stream %d value %d: the timestamp is not a string of nanoseconds: %s", si, vi, Trim(string(v[0]), 40))
			}
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("stream %d value %d: timestamp %q is not nanoseconds since 1970", si, vi, Trim(ts, 40))
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, nil, fmt.Errorf("stream %d value %d: the line is not a string", si, vi)
			}
			out = append(out, LokiEntry{TS: n, Stream: labels, Line: line})
		}
	}
	return out, r.Warnings, nil
}

// lokiEntriesLimit reads the limit from the error Loki answers when a query asks for more
// lines than its max_entries_limit_per_query: "max entries limit per query exceeded,
// limit > max_entries_limit (1000 > 500)".
var lokiEntriesLimit = regexp.MustCompile(`max entries limit per query exceeded.*\(\d+ > (\d+)\)`)

// scan pages forward through [cutoff, now] and counts matches per pattern.
func (s *lokiSource) scan(ctx context.Context, q *logQuery, run *Run, cutoff, now time.Time, tally *logScan) ([]int, []string, error) {
	query, err := s.query.render(run.Deploy, now.Sub(cutoff))
	if err != nil {
		return nil, nil, err
	}
	query = lokiQuery(query, s.patterns, s.exclude)
	t := run.Transcript
	counts := make([]int, len(q.patterns))
	var samples []string
	start, end := cutoff.UnixNano(), now.UnixNano()
	first := start
	outside := 0 // lines Loki answered from outside [first, end)
	budget := q.maxBytes
	limit := lokiPageLimit           // lines a page; lowered to what the Loki allows
	seenAtStart := map[string]bool{} // entries at the first timestamp of a page, already counted
	warned := map[string]bool{}
	matched := make([]int, 0, len(q.patterns))
	for page := 0; ; page++ {
		if page == lokiMaxPages {
			tally.truncated = true
			tally.notes = append(tally.notes, fmt.Sprintf("stopped after %d pages of %d lines", lokiMaxPages, limit))
			break
		}
		if budget <= 0 {
			tally.truncated = true
			tally.notes = append(tally.notes, fmt.Sprintf("stopped at max_bytes (%d) of Loki answers", q.maxBytes))
			break
		}
		capBytes := min(int64(lokiPageBytes), budget)
		params := url.Values{"query": {query}, "start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)},
			"limit": {strconv.Itoa(limit)}, "direction": {"forward"}}
		req := &Request{Method: http.MethodGet, URL: s.endpoint + "?" + params.Encode(), Header: s.header.Clone(),
			Timeout: s.timeout, Auth: s.auth, MaxBodyBytes: capBytes, FollowRedirects: true}
		var tr *Transcript
		if page == 0 {
			tr = t
		}
		resp, refused, err := s.ask(ctx, req, tr, t, tally)
		if err != nil {
			return nil, nil, fmt.Errorf("could not query Loki: %w", err)
		}
		if refused != "" {
			return nil, nil, errors.New(refused)
		}
		tally.bytes += resp.BodyBytes
		budget -= resp.BodyBytes
		if resp.Status == http.StatusBadRequest {
			// A Loki whose max_entries_limit_per_query is below vigil's page: page by its limit.
			if m := lokiEntriesLimit.FindSubmatch(resp.Body); m != nil {
				if n, err := strconv.Atoi(string(m[1])); err == nil && n > 0 && n < limit {
					t.Printf("Loki answers at most %d lines a query (max_entries_limit_per_query): asking for pages of %d", n, n)
					limit = n
					page--
					continue
				}
			}
		}
		if resp.Status != http.StatusOK {
			return nil, nil, fmt.Errorf("the Loki API at %s answered %d: %s", s.endpoint, resp.Status, Trim(strings.TrimSpace(string(resp.Body)), 300))
		}
		if resp.Truncated {
			if capBytes == lokiPageBytes {
				return nil, nil, fmt.Errorf("the Loki API at %s answered more than %d bytes for %d lines; narrow the query or the patterns", s.endpoint, lokiPageBytes, limit)
			}
			tally.truncated = true
			tally.notes = append(tally.notes, fmt.Sprintf("stopped at max_bytes (%d) of Loki answers", q.maxBytes))
			break
		}
		entries, warnings, err := parseLoki(resp.Body)
		if err != nil {
			return nil, nil, fmt.Errorf("the Loki API at %s: %w", s.endpoint, err)
		}
		for _, w := range warnings {
			// Loki warns when it answered part of what was asked (a limit reached, a
			// store it could not read): what it left out may hold matches.
			if !warned[w] {
				warned[w] = true
				tally.truncated = true
				tally.notes = append(tally.notes, "Loki warned: "+Trim(w, 300))
			}
		}
		sort.SliceStable(entries, func(i, j int) bool { return entries[i].TS < entries[j].TS })
		for _, e := range entries {
			if e.TS < first || e.TS >= end {
				// Loki has answered lines from before start (grafana/loki issues 3428 and
				// 5451): a warning from before the deploy is not the deploy's.
				outside++
				continue
			}
			if e.TS == start && seenAtStart[e.Stream+"\x00"+e.Line] {
				continue // the previous page ended at this timestamp
			}
			tally.lines++
			// The whole line: Loki's filter matched it anywhere, a stack dump of
			// megabytes on one line included.
			line := []byte(e.Line)
			matched = q.match(line, matched)
			if len(matched) > 0 && q.excludes(line) {
				tally.excluded++
				continue
			}
			for _, i := range matched {
				counts[i]++
				samples = append(samples, Trim(strings.TrimSpace(e.Line), logSampleMax))
				if len(samples) > q.samples {
					samples = samples[1:]
				}
			}
		}
		if len(entries) < limit {
			break
		}
		last := entries[len(entries)-1].TS
		if last <= start {
			// A whole page at one nanosecond (or, answered out of range, before it): step
			// past it rather than loop. What else Loki holds at that nanosecond is not read.
			start++
			if last == start-1 {
				tally.truncated = true
				tally.notes = append(tally.notes, fmt.Sprintf("more than a page (%d lines) share one timestamp; the rest of them were not read", limit))
			}
			clear(seenAtStart)
			continue
		}
		// Loki's start is inclusive: ask again from the last timestamp and skip what was seen.
		start = last
		clear(seenAtStart)
		for _, e := range entries {
			if e.TS == last {
				seenAtStart[e.Stream+"\x00"+e.Line] = true
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("could not query Loki: %w", err)
		}
	}
	if outside > 0 {
		t.Printf("Loki answered %d lines outside the interval asked for; they are not counted", outside)
	}
	if samples == nil {
		samples = []string{}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, nil, ctx.Err()
	}
	return counts, samples, nil
}

// ask sends req and, while Loki answers 429 (its rate limit: too many outstanding
// requests, a tenant's query limits) or 503 (unavailable: a querier restarting), asks
// again, within the run's deadline: after the answer's Retry-After when the answer to
// the next attempt would still fit before the deadline, else after a short backoff. When
// the deadline leaves no room for another attempt, refused says what Loki answered.
func (s *lokiSource) ask(ctx context.Context, req *Request, tr, t *Transcript, tally *logScan) (resp *Response, refused string, err error) {
	first := time.Now()
	for attempt := 1; ; attempt++ {
		resp, err = s.client.Do(ctx, req, tr)
		if err != nil || (resp.Status != http.StatusTooManyRequests && resp.Status != http.StatusServiceUnavailable) {
			return resp, "", err
		}
		tally.bytes += resp.BodyBytes
		why := "Loki's rate limit: it refused the query as one too many"
		if resp.Status == http.StatusServiceUnavailable {
			why = "Loki unavailable"
		}
		wait, how := lokiBusy.Delay(attempt), ""
		deadline, ok := ctx.Deadline()
		left := time.Until(deadline)
		if after, ok := backoff.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			how = "; its Retry-After (" + after.String() + ") ends too close to the run's deadline"
			if after+lokiRetryRoom <= left {
				wait, how = after, ", as its Retry-After asks"
			}
		}
		if !ok || wait+lokiRetryRoom > left || !waitPoll(ctx, wait) {
			return resp, fmt.Sprintf("the Loki API at %s answered %d (%s), asked %d× over %s until the run's deadline left no time to ask again: %s; "+
				"give the check a longer timeout, or raise the tenant's query limits in Loki", s.endpoint, resp.Status, why, attempt,
				time.Since(first).Round(time.Millisecond), Trim(strings.TrimSpace(string(resp.Body)), 300)), nil
		}
		t.Printf("Loki answered %d (%s): asked again after %s%s", resp.Status, why, wait.Round(time.Millisecond), how)
	}
}
