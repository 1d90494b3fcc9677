package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// An agent restarted on a store with history reads it while its checks already run. Until
// it has, its pages and badges say so: the overview has a banner, the uptime figures whose
// window reaches back past what was read are in italics with the reason on hover, the
// check page says the same, and the uptime and response badges say "reading history"
// rather than a week's uptime from the runs read so far. Once read, none of that is left
// and the figures are the history's.
func TestPagesSayWhileHistoryIsRead(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the agent stops (cleanups run last first)
	now := time.Now()
	var recs []*store.RunRecord
	for i := range 100 { // three days of runs, one failed: 99.00% over the week
		o := "pass"
		if i == 50 {
			o = "fail"
		}
		recs = append(recs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-time.Duration(i+1) * 40 * time.Minute),
			Duration: 20 * time.Millisecond, Outcome: o, Location: "local"},
			// another location's run of the check, in a store it shares: not this agent's view
			&store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-time.Duration(i+1) * 40 * time.Minute), Outcome: "fail", Location: "us-east"})
	}
	if err := st.SaveRuns(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	slow := &slowHistory{SQLite: st, slices: make(chan chan struct{})}
	tg := newTarget(t)
	l := launch(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String(), Options{Store: slow})
	t.Cleanup(func() {
		go func() { // the history is read to its end, so that the agent stops
			for next := range slow.slices {
				close(next)
			}
		}()
		if err := l.stop(); err != nil {
			t.Errorf("agent.Run: %v", err)
		}
		close(slow.slices)
	})
	get := func(path string) string {
		t.Helper()
		return getOK(t, l.url+path)
	}
	partialCell := regexp.MustCompile(`<td class="num up [a-z]+ partial" title="counts the runs from \d\d:\d\d:\d\dZ on: the store&#39;s history before is still being read">`)

	close(<-slow.slices) // the first five minutes read
	next := <-slow.slices
	page := get("/")
	if !strings.Contains(page, `<div class="banner history" role="status"><strong>Uptime in part</strong>Figures in italics count the runs from`) {
		t.Errorf("the overview has no banner while the history is read:\n%s", page)
	}
	if n := len(partialCell.FindAllString(page, -1)); n != 3 {
		t.Errorf("%d uptime cells marked partial while the history is read; want home's three:\n%s", n, page)
	}
	partBar := regexp.MustCompile(`<i class="b-[a-z] part" title="[^"]* \(in part\)">`)
	if n := len(partBar.FindAllString(page, -1)); n < 47 {
		t.Errorf("%d of the day's 48 bars are faded as counted in part while only the last minutes are read", n)
	}
	if p := get("/checks/home"); !strings.Contains(p, `id="history"`) || !strings.Contains(p, "still being read") {
		t.Errorf("the check page does not say its figures count part of their windows:\n%s", p)
	}
	for _, w := range []string{"1h", "24h", "7d"} {
		if b := get("/badges/home/uptime.svg?window=" + w); !strings.Contains(b, ">reading history<") {
			t.Errorf("the %s uptime badge while the history is read: %s", w, b)
		}
	}
	if b := get("/badges/home/shields.json?metric=response&window=7d"); !regexp.MustCompile(`"message":\s*"reading history"`).MatchString(b) {
		t.Errorf("the response time endpoint while the history is read: %s", b)
	}

	close(next)
	for read := false; !read; {
		select {
		case next := <-slow.slices:
			close(next)
		case <-l.a.HistoryRead():
			read = true
		case <-time.After(time.Minute):
			t.Fatal("the history was not read in a minute")
		}
	}
	page = get("/")
	if strings.Contains(page, `class="banner history"`) || strings.Contains(page, ` partial"`) || partBar.MatchString(page) {
		t.Errorf("the overview still says the history is being read once it is:\n%s", page)
	}
	if b := get("/badges/home/uptime.svg?window=7d"); !regexp.MustCompile(`>99\.\d\d%<`).MatchString(b) {
		t.Errorf("the 7d uptime badge once the history is read: %s; want 99.xx%%", b)
	}
	if b := get("/badges/home/uptime.svg?window=24h"); !regexp.MustCompile(`>(99\.\d\d|100)%<`).MatchString(b) {
		t.Errorf("the 24h uptime badge once the history is read: %s", b)
	}
}

// An agent stopped cleanly saves its uptime board; restarted, it reads it back with the
// runs stored while it was stopped, not the week, and says what reading the week says.
func TestRestartReadsTheSavedBoard(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	write := func(recs ...*store.RunRecord) {
		t.Helper()
		st, err := store.Open(ctx, filepath.Join(dir, "vigil.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.SaveRuns(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	var recs []*store.RunRecord
	for i := range 200 { // five days of runs, two failed
		o := "pass"
		if i%100 == 7 {
			o = "fail"
		}
		recs = append(recs, &store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-time.Duration(i+1) * 36 * time.Minute),
			Duration: 20 * time.Millisecond, Outcome: o, Location: "local"})
	}
	write(recs...)
	tg := newTarget(t)
	cfg := webConfig{url: tg.srv.URL, verify: "interval: 1m, count: 2"}.String()
	badges := func(h *harness) (out []string) {
		t.Helper()
		select {
		case <-h.a.HistoryRead():
		case <-time.After(time.Minute):
			t.Fatal("the history was not read in a minute")
		}
		for _, w := range []string{"1h", "24h", "7d"} {
			_, b := h.request("GET", "/badges/home/shields.json?metric=uptime&window="+w, "")
			out = append(out, fmt.Sprint(b["message"]))
		}
		return out
	}

	first := startAgent(t, dir, cfg)
	if status, out := first.request("POST", "/api/v1/checks/home/run", ""); status != 200 || out["outcome"] != "pass" {
		t.Fatalf("run now: %d %v", status, out)
	}
	before := badges(first)
	first.stop()
	if strings.Contains(first.logs.String(), "uptime board read back") {
		t.Errorf("the first start found a board to read back:\n%s", first.logs.String())
	}
	// Written while it was stopped (another writer in its location, an agent elsewhere).
	write(&store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-30 * time.Minute), Duration: time.Second, Outcome: "fail", Location: "local"},
		&store.RunRecord{Check: "home", Kind: "http", Started: now.Add(-20 * time.Minute), Outcome: "fail", Location: "us-east"})

	second := startAgent(t, dir, cfg)
	back := badges(second)
	second.stop()
	if !strings.Contains(second.logs.String(), "uptime board read back") {
		t.Errorf("the restart did not read the saved board back:\n%s", second.logs.String())
	}
	if back[0] == before[0] || back[2] == before[2] {
		t.Errorf("uptime over 1 h, 24 h, 7 d before the stop %v, after it %v: the run written while it was stopped is not counted", before, back)
	}

	st, err := store.Open(ctx, filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	saved, err := st.SavedBoard(ctx, second.a.name)
	if err != nil || saved == nil || saved.Location != "local" {
		t.Fatalf("the board the second stop saved: %+v, %v", saved, err)
	}
	if err := st.SaveBoard(ctx, &store.Board{Agent: second.a.name, Location: "elsewhere", Data: saved.Data}); err != nil { // not this location's: unused
		t.Fatal(err)
	}
	st.Close()
	third := startAgent(t, dir, cfg)
	again := badges(third)
	if strings.Contains(third.logs.String(), "uptime board read back") {
		t.Errorf("the third start read back another location's board:\n%s", third.logs.String())
	}
	if strings.Join(again, " ") != strings.Join(back, " ") {
		t.Errorf("uptime over 1 h, 24 h, 7 d read back %v; reading the week %v", back, again)
	}
}
