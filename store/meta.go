package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MeasuredSince keeps, under key in the meta table, a check's fingerprint (what it
// measures: configs.Check.Fingerprint) and since when it has measured that, and returns
// that time: a deploy's baseline takes only the runs that started from it. A key seen for
// the first time is recorded with the zero time (the runs already stored are the check's
// as it is now, as far as anyone knows: an upgrade does not throw every baseline away);
// a new fingerprint, with now. The same fingerprint writes nothing, so agents sharing a
// store with the same config agree on the time whichever saw it first.
func (s *common) MeasuredSince(ctx context.Context, key, fingerprint string, now time.Time) (time.Time, error) {
	if fingerprint == "" || strings.Contains(fingerprint, " ") {
		return time.Time{}, fmt.Errorf("store: bad fingerprint %q", fingerprint)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING`,
		key, fingerprint+" 0"); err != nil {
		return time.Time{}, err
	}
	// A fingerprint is hex: no LIKE wildcard in it.
	if _, err := s.db.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ? AND value NOT LIKE ?`,
		fingerprint+" "+strconv.FormatInt(nanos(now), 10), key, fingerprint+" %"); err != nil {
		return time.Time{}, err
	}
	var value string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&value); err != nil {
		return time.Time{}, err
	}
	fp, at, _ := strings.Cut(value, " ")
	n, err := strconv.ParseInt(at, 10, 64)
	if fp != fingerprint || err != nil {
		return time.Time{}, fmt.Errorf("store: meta %s holds %q, not fingerprint %s", key, value, fingerprint)
	}
	return fromNanos(n), nil
}
