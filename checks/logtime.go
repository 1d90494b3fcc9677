package checks

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// ParseLogTime reads the timestamp a log line starts with, in the forms common loggers
// write, and reports whether there was one. Times without a zone are local (loc).
//
//	2026-11-23T10:15:04.123Z, 2026-11-23 10:15:04,123 +0100  ISO 8601 / RFC 3339, log4j, Python
//	2026/11/23 10:15:04                                     Go's log package, nginx
//	2026-11-23T10:15:04+01, 2026-11-23 10:15:04 +01        offsets of hours alone (PostgreSQL)
//	Nov 23 10:15:04                                         syslog (the year is inferred from now)
//	<34>1 2026-11-23T10:15:04.123+01:00 host app - - - x    syslog RFC 5424; RFC 3164 with its <PRI>
//	[Mon Nov 23 10:15:04.123456 2026]                       Apache's error log
//	{"time":"2026-11-23T10:15:04Z",...}, time=... / ts=...  JSON (slog, zap, logrus) and logfmt
//	level=warn ts=2026-11-23T10:15:04Z msg=...              logfmt with the time after other keys
//	{"__REALTIME_TIMESTAMP":"1795428904123456",...}          journald (journalctl -o json / export)
//
// A leading "[" around the timestamp is allowed.
func ParseLogTime(line []byte, now time.Time, loc *time.Location) (time.Time, bool) {
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 {
		return time.Time{}, false
	}
	if line[0] == '<' {
		line = syslogHeader(line)
	}
	if line[0] == '{' {
		return jsonLogTime(line, loc)
	}
	if t, ok, kv := logfmtTime(line, now, loc); kv {
		return t, ok
	}
	line = bytes.TrimPrefix(line, []byte("["))
	if t, ok := isoTime(line, loc); ok {
		return t, true
	}
	if t, ok := syslogTime(line, now, loc); ok {
		return t, true
	}
	// Apache: Mon Nov 23 10:15:04.123456 2026
	if len(line) >= 24 && line[3] == ' ' && line[7] == ' ' {
		end := bytes.IndexByte(line, ']')
		if end > 0 && end <= 40 {
			for _, layout := range []string{"Mon Jan _2 15:04:05.000000 2006", "Mon Jan _2 15:04:05 2006"} {
				if t, err := time.ParseInLocation(layout, string(line[:end]), loc); err == nil {
					return t, true
				}
			}
		}
	}
	return time.Time{}, false
}

func jsonLogTime(line []byte, loc *time.Location) (time.Time, bool) {
	if len(line) > 64<<10 {
		line = line[:64<<10] // a timestamp key comes early; gjson stops at the first match
	}
	for _, key := range []string{"time", "ts", "timestamp", "@timestamp", "t", "__REALTIME_TIMESTAMP"} {
		r := gjson.GetBytes(line, key)
		switch r.Type {
		case gjson.String:
			if t, ok := isoTime([]byte(r.Str), loc); ok {
				return t, true
			}
			if f, err := strconv.ParseFloat(r.Str, 64); err == nil { // journald: microseconds, as a string
				return epochTime(f)
			}
		case gjson.Number:
			return epochTime(r.Num)
		}
	}
	return time.Time{}, false
}

// logfmtKeys are the keys whose value logfmtTime reads as the line's time.
var logfmtKeys = map[string]bool{"time": true, "ts": true, "t": true, "timestamp": true, "__REALTIME_TIMESTAMP": true}

// logfmtTime reads the time of a logfmt line (key=value pairs, values quoted when they
// hold spaces) from its time, ts, t or timestamp key, wherever it is among the first 1 KiB:
// go-kit's loggers write level=warn ts=... . kv reports whether the line is logfmt at all.
// journald's export format (-o export) is a line per field: its __REALTIME_TIMESTAMP line
// dates the MESSAGE line after it.
func logfmtTime(line []byte, now time.Time, loc *time.Location) (t time.Time, ok, kv bool) {
	if len(line) > 1024 {
		line = line[:1024]
	}
	for first := true; ; first = false {
		line = bytes.TrimLeft(line, " \t")
		eq := 0
		for eq < len(line) && (line[eq] == '_' || line[eq] == '.' || line[eq] == '-' || line[eq] >= 'a' && line[eq] <= 'z' ||
			line[eq] >= 'A' && line[eq] <= 'Z' || eq > 0 && line[eq] >= '0' && line[eq] <= '9') {
			eq++
		}
		if eq == 0 || eq == len(line) || line[eq] != '=' {
			return time.Time{}, false, !first
		}
		key, rest := line[:eq], line[eq+1:]
		quoted := len(rest) > 0 && rest[0] == '"'
		end := bytes.IndexAny(rest, " \t")
		if quoted {
			rest = rest[1:]
			end = 0
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
		}
		if end < 0 || end > len(rest) {
			end = len(rest)
		}
		if logfmtKeys[string(key)] {
			if f, err := strconv.ParseFloat(string(rest[:end]), 64); err == nil {
				t, ok = epochTime(f)
				return t, ok, true
			}
			// The value, or a timestamp with spaces in it that starts there.
			if t, ok := ParseLogTime(rest, now, loc); ok {
				return t, true, true
			}
		}
		if quoted {
			end++
		}
		if end >= len(rest) {
			return time.Time{}, false, true
		}
		line = rest[end:]
	}
}

// epochTime reads seconds, milliseconds, microseconds or nanoseconds since 1970, by size.
func epochTime(f float64) (time.Time, bool) {
	switch {
	case f <= 0:
		return time.Time{}, false
	case f < 1e11:
		// Seconds with a fraction: a float64 holds microseconds exactly at this size,
		// nanoseconds not (1795428904.123 would read as .122999808).
		return time.UnixMicro(int64(math.Round(f * 1e6))), true
	case f < 1e14:
		return time.UnixMilli(int64(f)), true
	case f < 1e17:
		return time.UnixMicro(int64(f)), true
	default:
		return time.Unix(0, int64(f)), true
	}
}

// isoTime parses YYYY-MM-DD[T ]HH:MM:SS[.,fraction][Z|±HH:MM|±HHMM|±HH] (the offset also
// after a space) or the same with slashes in the date, at the start of b.
func isoTime(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 19 {
		return time.Time{}, false
	}
	sep := b[4]
	if (sep != '-' && sep != '/') || b[7] != sep || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	i := 19
	nsec := 0
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		i++
		digits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 9 {
				nsec = nsec*10 + int(b[i]-'0')
				digits++
			}
			i++
		}
		for ; digits < 9 && digits > 0; digits++ {
			nsec *= 10
		}
	}
	zone := loc
	rest := b[i:]
	if z, ok := isoZone(rest); ok {
		zone = z
	} else if len(rest) > 1 && rest[0] == ' ' && rest[1] != 'Z' {
		if z, ok := isoZone(rest[1:]); ok { // "2026-11-23 10:15:04 +0100"
			zone = z
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, zone), true
}

// isoZone reads the zone at the start of b: Z, ±hh:mm, ±hhmm or ±hh. ISO 8601 allows all
// four; PostgreSQL writes ±hh for a zone without an abbreviation, and a strftime %z
// ±hhmm. A time followed by a lone ±hh was read in vigil's zone, hours off.
func isoZone(b []byte) (*time.Location, bool) {
	if len(b) > 0 && b[0] == 'Z' {
		return time.UTC, true
	}
	digit := func(i int) bool { return i < len(b) && b[i] >= '0' && b[i] <= '9' }
	two := func(i int) int { return int(b[i]-'0')*10 + int(b[i+1]-'0') }
	if len(b) < 3 || (b[0] != '+' && b[0] != '-') || !digit(1) || !digit(2) {
		return nil, false
	}
	h, m := two(1), 0
	switch {
	case len(b) > 3 && b[3] == ':' && digit(4) && digit(5):
		m = two(4)
	case digit(3) && digit(4):
		m = two(3)
	case digit(3):
		return nil, false // "+012": not an offset vigil can be sure of
	}
	if h > 14 || m > 59 {
		return nil, false
	}
	off := h*3600 + m*60
	if b[0] == '-' {
		off = -off
	}
	return time.FixedZone("", off), true
}

// syslogHeader returns line after a syslog priority ("<34>") and, in RFC 5424, the
// version after it ("<34>1 2026-11-23T10:15:04.123+01:00 host app - - - msg"), where the
// timestamp starts; line itself when it does not start with a priority. RFC 3164's
// "<34>Nov 23 10:15:04 host app: msg" leaves the syslog time.
func syslogHeader(line []byte) []byte {
	end := bytes.IndexByte(line, '>')
	if end < 2 || end > 4 {
		return line
	}
	for _, c := range line[1:end] {
		if c < '0' || c > '9' {
			return line
		}
	}
	rest := line[end+1:]
	v := 0 // the version: 1 to 3 digits, not starting with 0
	for v < len(rest) && v < 3 && rest[v] >= '0' && rest[v] <= '9' && rest[0] != '0' {
		v++
	}
	if v > 0 && v < len(rest) && rest[v] == ' ' {
		rest = rest[v+1:]
	}
	if len(rest) == 0 {
		return line
	}
	return rest
}

var months = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7,
	"Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// syslogTime parses "Nov 23 10:15:04" (or "Nov  3 ..."): no year, so the one that puts it
// no more than a day in the future.
func syslogTime(b []byte, now time.Time, loc *time.Location) (time.Time, bool) {
	if len(b) < 15 || b[3] != ' ' {
		return time.Time{}, false
	}
	m, ok := months[string(b[:3])]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("Jan _2 15:04:05", string(b[:15]), loc)
	if err != nil {
		return time.Time{}, false
	}
	year := now.In(loc).Year()
	out := time.Date(year, m, t.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc)
	if out.After(now.Add(24 * time.Hour)) {
		out = out.AddDate(-1, 0, 0)
	}
	return out, true
}
