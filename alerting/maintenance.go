package alerting

import (
	"fmt"
	"slices"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// Maintenance answers whether a service or check is inside a configured maintenance
// window (config `maintenance:`). Failures in a window are recorded but not sent; the
// caller (the agent) asks before it writes notifications to the outbox. Build it once per
// loaded config with NewMaintenance; it is read-only and safe for concurrent use.
//
// A one-off window runs from start (inclusive) to end (exclusive). A weekly window starts
// on each listed day (every day when days is empty) when the clock of its timezone (UTC
// when empty) reads `at`, and lasts `duration` of elapsed time, so a window may cross
// midnight and run into a day that is not listed. Across DST changes: when `at` does not
// exist that day (the clock jumps over it) the window starts at the jump; when `at`
// happens twice (the clock goes back) it starts at the first.
type Maintenance struct {
	windows []window
}

// Window is the occurrence of a maintenance window that covers a moment.
type Window struct {
	Name   string
	Reason string
	// Start and End bound this occurrence: End is when notifications flow again.
	Start, End time.Time
}

type window struct {
	name, reason string
	checks       []string
	services     []string

	// one-off
	start, end time.Time

	// weekly
	days     [7]bool // by time.Weekday
	hour     int
	minute   int
	duration time.Duration
	loc      *time.Location
}

// NewMaintenance parses the windows. Its errors name the window and the key; a config
// that passed validation never yields one.
func NewMaintenance(cfg []*configs.Maintenance) (*Maintenance, error) {
	m := &Maintenance{}
	for i, c := range cfg {
		if c == nil {
			continue
		}
		w, err := parseWindow(c, i)
		if err != nil {
			return nil, err
		}
		m.windows = append(m.windows, w)
	}
	return m, nil
}

func parseWindow(c *configs.Maintenance, i int) (window, error) {
	p := fmt.Sprintf("maintenance[%d]", i)
	w := window{name: c.Name, reason: c.Reason, checks: slices.Clone(c.Checks), services: slices.Clone(c.Services)}
	if w.name == "" {
		w.name = p
	}
	s, err := c.Schedule()
	if err != nil {
		return w, fmt.Errorf("%s.%w", p, err)
	}
	w.start, w.end = s.Start, s.End
	w.days, w.hour, w.minute, w.duration, w.loc = s.Days, s.Hour, s.Minute, s.Duration, s.Location
	return w, nil
}

// Active returns the first window, in config order, that covers now and applies to the
// check or to one of the services. A window applies when its checks list names the check
// or its services list names one of the services; with both lists empty it applies to
// everything. For a deploy event pass its service and no check; for a check event, the
// check and the services it belongs to.
func (m *Maintenance) Active(now time.Time, check string, services ...string) (Window, bool) {
	if m == nil {
		return Window{}, false
	}
	for i := range m.windows {
		w := &m.windows[i]
		if !w.appliesTo(check, services) {
			continue
		}
		if start, end, ok := w.covering(now); ok {
			return Window{Name: w.name, Reason: w.reason, Start: start, End: end}, true
		}
	}
	return Window{}, false
}

// ActiveWindow is a window that covers a moment, with what it applies to (both lists
// empty: everything).
type ActiveWindow struct {
	Window
	Checks, Services []string
}

// ActiveAll returns every window that covers now, in config order, whatever it applies to
// (the status page's banners).
func (m *Maintenance) ActiveAll(now time.Time) []ActiveWindow {
	if m == nil {
		return nil
	}
	var out []ActiveWindow
	for i := range m.windows {
		w := &m.windows[i]
		if start, end, ok := w.covering(now); ok {
			out = append(out, ActiveWindow{Window: Window{Name: w.name, Reason: w.reason, Start: start, End: end},
				Checks: slices.Clone(w.checks), Services: slices.Clone(w.services)})
		}
	}
	return out
}

// InMaintenance reports the window muting a service or check at now, for callers that
// hold the config rather than a Maintenance. Windows that do not parse are skipped:
// configuration validation rejects them at load.
func InMaintenance(windows []*configs.Maintenance, service, check string, now time.Time) (name, reason string, ok bool) {
	var m Maintenance
	for i, c := range windows {
		if c == nil {
			continue
		}
		if w, err := parseWindow(c, i); err == nil {
			m.windows = append(m.windows, w)
		}
	}
	var services []string
	if service != "" {
		services = []string{service}
	}
	w, ok := m.Active(now, check, services...)
	return w.Name, w.Reason, ok
}

func (w *window) appliesTo(check string, services []string) bool {
	if len(w.checks) == 0 && len(w.services) == 0 {
		return true
	}
	if check != "" && slices.Contains(w.checks, check) {
		return true
	}
	for _, s := range services {
		if s != "" && slices.Contains(w.services, s) {
			return true
		}
	}
	return false
}

// covering returns the occurrence of the window that covers now.
func (w *window) covering(now time.Time) (start, end time.Time, ok bool) {
	if w.loc == nil {
		return w.start, w.end, !now.Before(w.start) && now.Before(w.end)
	}
	// An occurrence covering now started at most duration ago; its local date is at most
	// one more day back than that, whatever the offsets.
	local := now.In(w.loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 12, 0, 0, 0, time.UTC)
	back := int(w.duration/(24*time.Hour)) + 2
	for i := 0; i <= back; i++ {
		day := today.AddDate(0, 0, -i)
		if !w.days[day.Weekday()] {
			continue
		}
		start := localStart(day.Year(), day.Month(), day.Day(), w.hour, w.minute, w.loc)
		end := start.Add(w.duration)
		if !now.Before(start) && now.Before(end) {
			return start, end, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// localStart is the first instant at which the clock of loc reads hour:minute (or later)
// on the given date: time.Date leaves the choice in a DST gap or overlap unspecified, and
// the choice it makes differs between zones.
func localStart(year int, month time.Month, day, hour, minute int, loc *time.Location) time.Time {
	want := time.Date(year, month, day, hour, minute, 0, 0, time.UTC)
	t := time.Date(year, month, day, hour, minute, 0, 0, loc)
	switch w := wallClock(t); {
	case w.Before(want):
		// In a gap, and t is the same clock reading before it: start when the clock jumps.
		_, jump := t.ZoneBounds()
		return jump
	case w.After(want):
		// In a gap, and t is after it: the zone t is in began at the jump.
		jump, _ := t.ZoneBounds()
		return jump
	}
	// The clock may have read the same time an offset change earlier (it went back since).
	zoneStart, _ := t.ZoneBounds()
	if zoneStart.IsZero() {
		return t
	}
	_, before := zoneStart.Add(-time.Second).Zone()
	_, now := t.Zone()
	if earlier := t.Add(time.Duration(now-before) * time.Second); earlier.Before(zoneStart) && wallClock(earlier).Equal(want) {
		return earlier
	}
	return t
}

// wallClock is t's local date and clock reading as a UTC time, to compare readings.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
