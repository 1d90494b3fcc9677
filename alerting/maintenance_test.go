package alerting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/configs"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestMaintenanceWindows(t *testing.T) {
	t.Parallel()
	weekly := func(days []string, at string, d time.Duration, tz string) *configs.Maintenance {
		return &configs.Maintenance{Name: "w", Days: days, At: at, Duration: d, Timezone: tz, Reason: "r"}
	}
	tests := []struct {
		name string
		w    *configs.Maintenance
		now  string
		// want is the occurrence's start, or "" for no window.
		want string
	}{
		// One-off: start inclusive, end exclusive; offsets honoured.
		{"one-off before", &configs.Maintenance{Start: "2026-12-01T23:00:00+01:00", End: "2026-12-02T01:00:00+01:00"}, "2026-12-01T21:59:59Z", ""},
		{"one-off at start", &configs.Maintenance{Start: "2026-12-01T23:00:00+01:00", End: "2026-12-02T01:00:00+01:00"}, "2026-12-01T22:00:00Z", "2026-12-01T22:00:00Z"},
		{"one-off last second", &configs.Maintenance{Start: "2026-12-01T23:00:00+01:00", End: "2026-12-02T01:00:00+01:00"}, "2026-12-01T23:59:59Z", "2026-12-01T22:00:00Z"},
		{"one-off at end", &configs.Maintenance{Start: "2026-12-01T23:00:00+01:00", End: "2026-12-02T01:00:00+01:00"}, "2026-12-02T00:00:00Z", ""},

		// Weekly in UTC (2026-01-05 is a Monday).
		{"monday before", weekly([]string{"mon"}, "22:00", 3*time.Hour, ""), "2026-01-05T21:59:00Z", ""},
		{"monday at", weekly([]string{"mon"}, "22:00", 3*time.Hour, ""), "2026-01-05T22:00:00Z", "2026-01-05T22:00:00Z"},
		{"crosses midnight into an unlisted day", weekly([]string{"mon"}, "22:00", 3*time.Hour, ""), "2026-01-06T00:30:00Z", "2026-01-05T22:00:00Z"},
		{"ends", weekly([]string{"mon"}, "22:00", 3*time.Hour, ""), "2026-01-06T01:00:00Z", ""},
		{"unlisted day", weekly([]string{"mon"}, "22:00", 3*time.Hour, ""), "2026-01-06T22:30:00Z", ""},
		{"days in any case", weekly([]string{"Tue"}, "22:00", 3*time.Hour, ""), "2026-01-06T22:30:00Z", "2026-01-06T22:00:00Z"},
		{"empty days is every day", weekly(nil, "22:00", 3*time.Hour, ""), "2026-01-10T23:00:00Z", "2026-01-10T22:00:00Z"},
		{"week-long window from sunday", weekly([]string{"sun"}, "00:00", 7*24*time.Hour-time.Minute, ""), "2026-01-10T23:58:00Z", "2026-01-04T00:00:00Z"},

		// The day is the day in the window's zone: Monday 08:00 in Tokyo is Sunday 23:00 UTC.
		{"day in its own zone", weekly([]string{"mon"}, "08:00", time.Hour, "Asia/Tokyo"), "2026-01-04T23:30:00Z", "2026-01-04T23:00:00Z"},
		{"not the UTC day", weekly([]string{"mon"}, "08:00", time.Hour, "Asia/Tokyo"), "2026-01-05T23:30:00Z", ""},

		// Prague springs forward 2026-03-29 at 02:00 CET (01:00Z) to 03:00 CEST: 02:30
		// does not exist, the window starts at the jump and lasts its hour.
		{"spring gap: before", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-03-29T00:59:00Z", ""},
		{"spring gap: at the jump", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z"},
		{"spring gap: an hour of elapsed time", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-03-29T01:59:59Z", "2026-03-29T01:00:00Z"},
		{"spring gap: over", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-03-29T02:00:00Z", ""},
		// Across the jump the duration is elapsed time: Saturday 23:00 CET + 4h is 04:00 CEST.
		{"spring: crossing the jump", weekly([]string{"sat"}, "23:00", 4*time.Hour, "Europe/Prague"), "2026-03-29T01:59:00Z", "2026-03-28T22:00:00Z"},
		{"spring: crossing the jump, over", weekly([]string{"sat"}, "23:00", 4*time.Hour, "Europe/Prague"), "2026-03-29T02:00:00Z", ""},
		// Prague falls back 2026-10-25 at 03:00 CEST (01:00Z) to 02:00 CET: 02:30 happens at
		// 00:30Z and again at 01:30Z; the window starts at the first and does not restart.
		{"fall overlap: first 02:30", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z"},
		{"fall overlap: still in", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-10-25T01:29:00Z", "2026-10-25T00:30:00Z"},
		{"fall overlap: second 02:30 starts nothing", weekly([]string{"sun"}, "02:30", time.Hour, "Europe/Prague"), "2026-10-25T01:30:00Z", ""},
		// New York: time.Date resolves gaps and overlaps the other way round than in Prague.
		{"NY spring gap", weekly([]string{"sun"}, "02:30", time.Hour, "America/New_York"), "2026-03-08T07:00:00Z", "2026-03-08T07:00:00Z"},
		{"NY spring gap: before the jump", weekly([]string{"sun"}, "02:30", time.Hour, "America/New_York"), "2026-03-08T06:59:00Z", ""},
		{"NY fall overlap: first 01:30", weekly([]string{"sun"}, "01:30", time.Hour, "America/New_York"), "2026-11-01T05:30:00Z", "2026-11-01T05:30:00Z"},
		{"NY fall overlap: second 01:30", weekly([]string{"sun"}, "01:30", time.Hour, "America/New_York"), "2026-11-01T06:30:00Z", ""},
		// Santiago's clock jumps from 24:00 to 01:00: Sunday 00:30 starts at 01:00 on Sunday.
		{"midnight gap", weekly([]string{"sun"}, "00:30", time.Hour, "America/Santiago"), "2026-09-06T04:00:00Z", "2026-09-06T04:00:00Z"},
		{"midnight gap: not Saturday", weekly([]string{"sun"}, "00:30", time.Hour, "America/Santiago"), "2026-09-06T03:59:00Z", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := alerting.NewMaintenance([]*configs.Maintenance{tt.w})
			if err != nil {
				t.Fatal(err)
			}
			got, ok := m.Active(utc(tt.now), "home", "web")
			switch {
			case tt.want == "" && ok:
				t.Errorf("at %s: in window %+v, want none", tt.now, got)
			case tt.want != "" && !ok:
				t.Errorf("at %s: no window, want the one from %s", tt.now, tt.want)
			case ok && !got.Start.Equal(utc(tt.want)):
				t.Errorf("at %s: window from %s, want from %s", tt.now, got.Start.UTC().Format(time.RFC3339), tt.want)
			case ok && (got.End.Sub(got.Start) <= 0 || !utc(tt.now).Before(got.End)):
				t.Errorf("at %s: window %s..%s does not cover now", tt.now, got.Start, got.End)
			}
		})
	}
}

func TestMaintenanceScope(t *testing.T) {
	t.Parallel()
	always := func(name string, checks, services []string) *configs.Maintenance {
		return &configs.Maintenance{Name: name, Checks: checks, Services: services, At: "00:00", Duration: 7 * 24 * time.Hour,
			Reason: "reason of " + name}
	}
	windows := []*configs.Maintenance{
		always("db", []string{"pool"}, nil),
		always("web", nil, []string{"web"}),
		always("both", []string{"login"}, []string{"api"}),
	}
	m, err := alerting.NewMaintenance(windows)
	if err != nil {
		t.Fatal(err)
	}
	now := utc("2026-06-01T12:00:00Z")
	tests := []struct {
		check    string
		services []string
		want     string
	}{
		{"pool", nil, "db"},
		{"pool", []string{"web"}, "db"}, // config order
		{"home", []string{"web"}, "web"},
		{"home", []string{"shop", "web"}, "web"}, // a check in several services
		{"", []string{"web"}, "web"},             // a deploy event
		{"login", nil, "both"},
		{"", []string{"api"}, "both"},
		{"home", []string{"shop"}, ""},
		{"", nil, ""},
	}
	for _, tt := range tests {
		got, ok := m.Active(now, tt.check, tt.services...)
		if got.Name != tt.want || ok != (tt.want != "") {
			t.Errorf("Active(%q, %v) = %q %v, want %q", tt.check, tt.services, got.Name, ok, tt.want)
		}
		if ok && got.Reason != "reason of "+tt.want {
			t.Errorf("reason %q", got.Reason)
		}
	}

	// A window naming nothing applies to everything; InMaintenance is the same answer from
	// the config, and an unnamed window is called by its position.
	all := []*configs.Maintenance{{Start: "2026-06-01T00:00:00Z", End: "2026-06-02T00:00:00Z", Reason: "freeze"}}
	if name, reason, ok := alerting.InMaintenance(all, "", "anything", now); !ok || name != "maintenance[0]" || reason != "freeze" {
		t.Errorf("InMaintenance = %q %q %v", name, reason, ok)
	}
	if _, _, ok := alerting.InMaintenance(windows, "shop", "home", now); ok {
		t.Error("InMaintenance muted a check and service no window names")
	}
	if name, _, ok := alerting.InMaintenance(windows, "web", "", now); !ok || name != "web" {
		t.Errorf("InMaintenance(web) = %q %v", name, ok)
	}
	var none *alerting.Maintenance
	if _, ok := none.Active(now, "home", "web"); ok {
		t.Error("a nil Maintenance has no windows")
	}
}

func TestMaintenanceParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		w    configs.Maintenance
		want string
	}{
		{configs.Maintenance{Start: "tomorrow", End: "2026-01-01T00:00:00Z"}, `maintenance[0].start: "tomorrow" is not an RFC 3339 time`},
		{configs.Maintenance{Start: "2026-01-02T00:00:00Z", End: "2026-01-01T00:00:00Z"}, "maintenance[0].end: 2026-01-01T00:00:00Z is not after start"},
		{configs.Maintenance{At: "7pm", Duration: time.Hour}, `maintenance[0].at: "7pm" is not a time of day`},
		{configs.Maintenance{At: "19:00"}, "maintenance[0].duration: missing: a weekly window needs at and duration"},
		{configs.Maintenance{At: "19:00", Duration: time.Hour, Days: []string{"fri", "caturday"}}, `maintenance[0].days[1]: "caturday" is not a day`},
		{configs.Maintenance{At: "19:00", Duration: time.Hour, Timezone: "Mars/Olympus"}, `maintenance[0].timezone: unknown time zone "Mars/Olympus"`},
	} {
		_, err := alerting.NewMaintenance([]*configs.Maintenance{&tt.w})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewMaintenance(%+v) = %v, want %q", tt.w, err, tt.want)
		}
	}
}

// fuzzZones are zones with DST gaps and overlaps, odd offsets, 30-minute DST (Lord Howe)
// and a clock that jumps at midnight (Santiago).
var fuzzZones = []string{"UTC", "Europe/Prague", "America/New_York", "America/Santiago", "Australia/Lord_Howe",
	"Asia/Kolkata", "Pacific/Chatham", "America/St_Johns", "Africa/Casablanca", "Asia/Tokyo"}

// FuzzMaintenanceWeekly compares Active with a brute-force reading of the rule: walk the
// clock minute by minute; on each listed local date the window starts at the first
// instant the clock reads `at` or later, and lasts duration.
func FuzzMaintenanceWeekly(f *testing.F) {
	for _, s := range []struct {
		now        string
		zone, days uint8
		hh, mm     uint8
		minutes    uint16
	}{
		{"2026-03-29T01:00:00Z", 1, 0x7f, 2, 30, 60},
		{"2026-10-25T01:29:00Z", 1, 0x7f, 2, 30, 60},
		{"2026-11-01T05:30:00Z", 2, 0x01, 1, 30, 60},
		{"2026-09-06T04:00:00Z", 3, 0x01, 0, 30, 60},
		{"2026-04-05T03:10:00Z", 3, 0x7f, 23, 30, 90},
		{"2026-04-05T15:00:00Z", 4, 0x7f, 1, 45, 40},
		{"2026-09-27T14:00:00Z", 6, 0x7f, 2, 45, 500},
		{"2026-01-04T23:30:00Z", 9, 0x02, 8, 0, 60},
		{"2026-01-10T23:58:00Z", 0, 0x01, 0, 0, 10079},
	} {
		f.Add(utc(s.now).Unix(), s.zone, s.days, s.hh, s.mm, s.minutes)
	}
	f.Fuzz(func(t *testing.T, unix int64, zone, days, hh, mm uint8, minutes uint16) {
		const from, span = 946684800, 37 * 365 * 86400 // 2000..2037
		if unix < 0 {
			unix = -(unix + 1)
		}
		now := time.Unix(from+unix%span, 0).UTC()
		loc, err := time.LoadLocation(fuzzZones[int(zone)%len(fuzzZones)])
		if err != nil {
			t.Fatal(err)
		}
		var dayNames []string
		for i, d := range configs.WeekDays {
			if days&(1<<i) != 0 {
				dayNames = append(dayNames, d)
			}
		}
		w := &configs.Maintenance{Days: dayNames, At: time.Date(0, 1, 1, int(hh%24), int(mm%60), 0, 0, time.UTC).Format("15:04"),
			Duration: time.Duration(1+int(minutes)%(7*24*60)) * time.Minute, Timezone: loc.String()}
		if unix&1 == 1 {
			// Half the time, go near the zone's last offset change, where the edges are.
			if change, _ := now.In(loc).ZoneBounds(); !change.IsZero() && change.Year() >= 2000 {
				near := (unix >> 1) % int64(w.Duration/time.Minute+36*60)
				now = change.Add(time.Duration(near)*time.Minute - 12*time.Hour)
			}
		}
		m, err := alerting.NewMaintenance([]*configs.Maintenance{w})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := m.Active(now, "")
		want, wantOK := bruteForce(w, loc, now)
		if ok != wantOK || (ok && !got.Start.Equal(want)) {
			t.Fatalf("%+v at %s (%s): Active = %v from %s; brute force = %v from %s", w, now, now.In(loc), ok, got.Start.In(loc), wantOK, want.In(loc))
		}
	})
}

func bruteForce(w *configs.Maintenance, loc *time.Location, now time.Time) (time.Time, bool) {
	at, _ := time.Parse("15:04", w.At)
	atMin := at.Hour()*60 + at.Minute()
	listed := func(d time.Weekday) bool {
		if len(w.Days) == 0 {
			return true
		}
		for _, name := range w.Days {
			if configs.WeekDays[(int(d)+6)%7] == name {
				return true
			}
		}
		return false
	}
	type date struct {
		y int
		m time.Month
		d int
	}
	start := now.Add(-w.Duration - 48*time.Hour).Truncate(time.Minute)
	l := start.In(loc)
	first := date{l.Year(), l.Month(), l.Day()} // may be partly before start: not judged
	seen := map[date]bool{}
	var last time.Time
	found := false
	for u := start; !u.After(now); u = u.Add(time.Minute) {
		l := u.In(loc)
		d := date{l.Year(), l.Month(), l.Day()}
		if d == first || seen[d] || l.Hour()*60+l.Minute() < atMin {
			continue
		}
		seen[d] = true
		if listed(l.Weekday()) && now.Before(u.Add(w.Duration)) {
			last, found = u, true
		}
	}
	return last, found
}
