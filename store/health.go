package store

// Health: which kinds of writes fail now, for readiness.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// writeFailure is a kind of write that fails, until one succeeds again.
type writeFailure struct {
	since time.Time
	times int
	err   error
}

// noted records how a write of one kind went and returns its error: Health reports the
// kinds whose last write failed. A write abandoned because its context ended says nothing
// about the store.
func (s *common) noted(what string, err error) error {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f := s.failing[what]; {
	case err == nil, errors.Is(err, ErrKept): // a refused write is the store working
		delete(s.failing, what)
	case f == nil:
		s.failing[what] = &writeFailure{since: time.Now(), times: 1, err: err}
	default:
		f.times++
		f.err = err
	}
	return err
}

// probes are writes that exercise each kind of write's tables, for Health to try again in
// a transaction it rolls back.
var probes = map[string][]string{
	"saving runs":         {`INSERT INTO runs(check_name, kind, started_at, duration_ns, outcome) VALUES ('~probe', 'probe', 0, 0, 'pass')`},
	"registering deploys": {`INSERT INTO deploys(id, service, version, created_at, status) VALUES ('~probe', '~probe', '', 0, 'verifying')`},
	"recording verdicts": {`INSERT INTO deploys(id, service, version, created_at, status) VALUES ('~probe', '~probe', '', 0, 'failed')`,
		`INSERT INTO deploy_locations(deploy_id, location, agent, status, evidence, reported_at) VALUES ('~probe', '~probe', '~probe', 'failed', '', 0)`,
		`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status) VALUES ('~probe', '', '~probe', '', 0, 0, 'pending')`},
	"queueing notifications": {`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status) VALUES ('~probe', '', '~probe', '', 0, 0, 'pending')`},
	"claiming notifications": {`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status, claimed_by, lease_until) VALUES ('~probe', '', '~probe', '', 0, 0, 'pending', '~probe', 1)`},
	"recording deliveries":   {`INSERT INTO outbox(notifier, event, idem_key, payload, created_at, next_attempt_at, status) VALUES ('~probe', '', '~probe', '', 0, 0, 'delivered')`},
	"saving incidents": {`INSERT INTO incidents(check_name, open, seq, opened_at) VALUES ('~probe', 0, 0, 0)`,
		`INSERT INTO check_locations(check_name, location, failing, failures, successes, since, updated_at) VALUES ('~probe', '~probe', 0, 0, 0, 0, 0)`},
	"heartbeats": {`INSERT INTO agents(name, instance, location, started_at, heartbeat_at) VALUES ('~probe', '~probe', '~probe', 0, 0)`,
		`INSERT INTO beat_takers(check_name, agent, until_at) VALUES ('~probe', '~probe', 0)`},
	"saving beats": {`INSERT INTO beats(check_name, received_at, status) VALUES ('~probe', 0, 'ok')`},
}

// Health says which kinds of writes fail now (readiness): a store can take the probe's
// test write and still fail every save of a run, on a corrupt table or a full disk. A kind
// that failed is tried again here, so readiness comes back when the store does, not only
// at that kind's next real write (a check that runs hourly): a committed test write proves
// there is space, and its own statements, rolled back, prove its tables take writes.
func (s *common) Health(ctx context.Context) error {
	s.mu.Lock()
	var kinds []string
	for k := range s.failing {
		kinds = append(kinds, k)
	}
	s.mu.Unlock()
	if len(kinds) == 0 {
		return nil
	}
	if s.Writable(ctx) == nil {
		for _, k := range kinds {
			if s.probe(ctx, k) == nil {
				s.noted(k, nil)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failing) == 0 {
		return nil
	}
	kinds = kinds[:0]
	for k := range s.failing {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	msgs := make([]string, 0, len(kinds))
	for _, k := range kinds {
		f := s.failing[k]
		msgs = append(msgs, fmt.Sprintf("%s fails (%d times since %s): %v", k, f.times, f.since.UTC().Format(time.RFC3339), f.err))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// probe runs a kind's probe statements in a transaction and rolls it back.
func (s *common) probe(ctx context.Context, kind string) error {
	stmts, ok := probes[kind]
	if !ok {
		return fmt.Errorf("no probe for %s", kind)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// Writable checks that a write succeeds (readiness).
func (s *common) Writable(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('ready', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
		time.Now().UTC().Format(time.RFC3339Nano))
	return err
}
