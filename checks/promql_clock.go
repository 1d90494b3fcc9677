package checks

import (
	"context"
	"time"
)

// promSkewSlack is how far apart vigil's clock and Prometheus's may be before a query is
// asked again at Prometheus's time: the Date header has whole seconds, so less cannot be
// told apart from the header's rounding.
const promSkewSlack = 2 * time.Second

// promDate is an answer's Date header (zero without one) and when its headers came.
type promDate struct{ date, read time.Time }

// skew estimates Prometheus's clock minus vigil's: the header was written within the
// second it names, just before its headers came.
func (d promDate) skew() (time.Duration, bool) {
	if d.date.IsZero() {
		return 0, false
	}
	return d.date.Add(500 * time.Millisecond).Sub(d.read).Round(time.Second), true
}

// askAtPromTime runs query at vigilAt, a time on vigil's clock, as Prometheus's clock
// tells it. A query is evaluated at the time vigil names, against samples stamped by
// Prometheus's clock: with the clocks a minute apart, vigil behind reads Prometheus's past
// (the version before the deploy) and vigil ahead its future (nothing within the lookback).
// The skew measured on the last answer is applied; when an answer shows the clocks further
// apart than that (by more than promSkewSlack), the query is asked again where it should
// have been. Ranges since the deploy keep their length: the deploy's start moves with the
// clock too.
func (p *PromQL) askAtPromTime(ctx context.Context, t *Transcript, query string, vigilAt time.Time) (*PromResult, error) {
	skew := time.Duration(p.skew.Load())
	res, date, err := p.ask(ctx, t, query, vigilAt.Add(skew))
	measured, ok := date.skew()
	if !ok || (measured-skew).Abs() <= promSkewSlack {
		return res, err
	}
	if measured.Abs() <= promSkewSlack {
		measured = 0
	}
	p.skew.Store(int64(measured))
	switch {
	case measured > 0:
		t.Printf("Prometheus's clock is %s ahead of vigil's (its Date header): asking again at its time, %s later", measured, measured)
	case measured < 0:
		t.Printf("Prometheus's clock is %s behind vigil's (its Date header): asking again at its time, %s earlier", -measured, -measured)
	default:
		t.Printf("Prometheus's clock agrees with vigil's again (its Date header): asking again at vigil's time")
	}
	res, _, err = p.ask(ctx, t, query, vigilAt.Add(measured))
	return res, err
}
