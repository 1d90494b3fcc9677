package configs

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	// Maintenance windows name IANA time zones; embedding the database makes them load
	// the same on a distroless image with no /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Maintenance is a recurring or one-off window in which failures are recorded but not sent.
type Maintenance struct {
	Name     string   `koanf:"name"`
	Checks   []string `koanf:"checks"`
	Services []string `koanf:"services"`
	// Start and End bound a one-off window (RFC 3339).
	Start string `koanf:"start"`
	End   string `koanf:"end"`
	// Weekly windows: days (mon..sun, empty: every day), a start time of day and a duration.
	Days     []string      `koanf:"days"`
	At       string        `koanf:"at"`
	Duration time.Duration `koanf:"duration"`
	Timezone string        `koanf:"timezone"`
	Reason   string        `koanf:"reason"`

	// The parsed times, filled once by validation.
	parsed   bool
	schedule *Schedule
	problems []schedProblem
}

// WeekDays are the day names a weekly maintenance window accepts, in any case.
var WeekDays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// Schedule is a maintenance window's times, parsed once, when the config is validated;
// alerting computes the window's occurrences from it.
type Schedule struct {
	// Start and End bound a one-off window (Location is nil then).
	Start, End time.Time
	// A weekly window starts on Days (by time.Weekday) when the clock of Location reads
	// Hour:Minute, and lasts Duration.
	Days         [7]bool
	Hour, Minute int
	Duration     time.Duration
	Location     *time.Location
}

// schedProblem is one thing wrong with a window's times: key is under the window's path.
type schedProblem struct{ key, fix, msg string }

// Schedule returns the window's parsed times, or an error naming the first key that does
// not parse. A config that loaded has a valid schedule for every window.
func (m *Maintenance) Schedule() (*Schedule, error) {
	if probs := m.parse(); len(probs) > 0 {
		key := probs[0].key
		if key != "" {
			key += ": "
		}
		return nil, fmt.Errorf("%s%s", key, probs[0].msg)
	}
	return m.schedule, nil
}

const rfc3339Fix = "write an RFC 3339 time with its offset, e.g. 2026-12-01T22:00:00Z or 2026-12-01T23:00:00+01:00"

// parse reads the window's times into m.schedule, once, and lists what is wrong with them.
func (m *Maintenance) parse() []schedProblem {
	if m.parsed {
		return m.problems
	}
	m.parsed = true
	oneOff := m.Start != "" || m.End != ""
	weekly := m.At != "" || m.Duration != 0 || len(m.Days) > 0
	s := &Schedule{}
	var probs []schedProblem
	bad := func(key, fix, format string, args ...any) {
		probs = append(probs, schedProblem{key, fix, fmt.Sprintf(format, args...)})
	}
	switch {
	case oneOff && weekly:
		bad("", "use start and end for a one-off window, or at, duration and days for a weekly one", "both kinds of window are set")
	case oneOff:
		parse := func(key, value string) time.Time {
			if value == "" {
				bad(key, rfc3339Fix, "missing: a one-off window needs start and end")
				return time.Time{}
			}
			t, err := time.Parse(time.RFC3339, value)
			if err != nil {
				bad(key, rfc3339Fix, "%q is not an RFC 3339 time", value)
			}
			return t
		}
		s.Start, s.End = parse("start", m.Start), parse("end", m.End)
		if !s.Start.IsZero() && !s.End.IsZero() && !s.End.After(s.Start) {
			bad("end", "end must be after start", "%s is not after start %s", m.End, m.Start)
		}
		if m.Timezone != "" {
			bad("timezone", "remove it: start and end carry their own offset", "a one-off window takes no timezone")
		}
	case weekly:
		if m.At == "" {
			bad("at", `set the start time of day as HH:MM, e.g. at: "22:30"`, "missing: a weekly window needs at and duration")
		} else if at, err := time.Parse("15:04", m.At); err != nil {
			bad("at", "write the start time of day as HH:MM (00:00 to 23:59), e.g. 22:30", "%q is not a time of day", m.At)
		} else {
			s.Hour, s.Minute = at.Hour(), at.Minute()
		}
		switch {
		case m.Duration == 0:
			bad("duration", "set how long the window lasts, e.g. duration: 2h", "missing: a weekly window needs at and duration")
		case m.Duration < time.Minute || m.Duration > 7*24*time.Hour:
			bad("duration", "use 1m to 168h (a week)", "%s is out of range", m.Duration)
		}
		s.Duration = m.Duration
		if len(m.Days) == 0 {
			s.Days = [7]bool{true, true, true, true, true, true, true}
		}
		for j, d := range m.Days {
			k := slices.Index(WeekDays, strings.ToLower(d))
			switch {
			case k < 0:
				bad(fmt.Sprintf("days[%d]", j), DidYouMean(strings.ToLower(d), WeekDays), "%q is not a day", d)
			case s.Days[(k+1)%7]: // WeekDays starts on Monday, time.Weekday on Sunday
				bad(fmt.Sprintf("days[%d]", j), "remove the repeat", "%q is listed twice", d)
			default:
				s.Days[(k+1)%7] = true
			}
		}
		s.Location = time.UTC
		if hostZone(m.Timezone) {
			bad("timezone", "name the zone: an IANA name such as Europe/Berlin, or UTC",
				"%q is the zone of the machine vigil runs on: the window would move with the host's TZ (a container's is usually UTC, a laptop's is not)", m.Timezone)
		} else if m.Timezone != "" {
			loc, err := time.LoadLocation(m.Timezone)
			if err != nil {
				bad("timezone", "use an IANA name such as Europe/Prague, America/New_York or UTC", "unknown time zone %q", m.Timezone)
			} else {
				s.Location = loc
			}
		}
	default:
		bad("", "set start and end (one-off), or at and duration (weekly)", "the window has no time")
	}
	m.schedule, m.problems = s, probs
	return probs
}

// hostZone says whether a timezone names the host's zone rather than one: "Local" is
// time.Local to time.LoadLocation, and "localtime" is, on Debian and its kin, a link in
// /usr/share/zoneinfo to /etc/localtime.
func hostZone(tz string) bool {
	return strings.EqualFold(tz, "Local") || strings.EqualFold(tz, "localtime")
}

func (v *validator) maintenance(checks map[string]bool) {
	names := map[string]int{}
	for i, m := range v.c.Maintenance {
		p := indexPath("maintenance", i)
		if m == nil {
			v.errf(p, "remove the empty item", "empty window")
			continue
		}
		if m.Name != "" {
			if !nameRE.MatchString(m.Name) {
				v.errf(p+".name", nameFix, "%q is not a valid name", m.Name)
			} else if j, dup := names[m.Name]; dup {
				v.errf(p+".name", "window names must be unique; rename one of them", "%q is already the name of maintenance[%d]", m.Name, j)
			} else {
				names[m.Name] = i
			}
		}
		for j, cn := range m.Checks {
			if !checks[cn] {
				v.errf(indexPath(p+".checks", j), DidYouMean(cn, slices.Sorted(maps.Keys(checks))), "unknown check %q", cn)
			}
		}
		for j, sn := range m.Services {
			if _, ok := v.c.Services[sn]; !ok {
				v.errf(indexPath(p+".services", j), DidYouMean(sn, slices.Sorted(maps.Keys(v.c.Services))), "unknown service %q", sn)
			}
		}
		for _, pr := range m.parse() {
			key := p
			if pr.key != "" {
				key += "." + pr.key
			}
			v.errf(key, pr.fix, "%s", pr.msg)
		}
	}
}
