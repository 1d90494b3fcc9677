package store

// The agent's hold on a SQLite file: one agent keeps its history in it. Two agents on one
// file (a second pod on a shared volume, a service manager starting another while the
// first still runs) both ran every check, stored every run twice, and the second took
// back the notifications the first was delivering (same name): sent twice.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrInUse is the answer to Hold on a file another agent holds.
var ErrInUse = errors.New("in use by another vigil agent")

// LockPath is the file beside the database whose lock says an agent holds it.
func LockPath(path string) string { return path + ".lock" }

// Hold takes the store for one agent until release: an exclusive lock on the file beside
// the database (LockPath), which the kernel releases when the process ends, however it
// ends, so a store left by a crash is not held by anyone. While another process holds it,
// Hold tries again every 200 ms for up to wait (a restart whose old process is still
// flushing), calling waiting once with who holds it, then answers ErrInUse. Readers of
// the store beside a running agent (tests, benchmarks) do not hold it. A private
// in-memory store needs no hold.
func (s *SQLite) Hold(ctx context.Context, wait time.Duration, waiting func(holder string)) (release func(), err error) {
	if s.path == "" {
		return func() {}, nil
	}
	path := LockPath(s.path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: opening the lock file %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	told := false
	for {
		held, err := lockFile(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("store: locking %s: %w", path, err)
		}
		if held {
			break
		}
		holder := holderOf(f)
		if !told && waiting != nil {
			waiting(holder)
			told = true
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("store: %s is %w (%s; %s): SQLite keeps one agent's history. "+
				"Stop that agent, give this one a store.dsn of its own, or share a PostgreSQL store (store.driver: postgres)", s.path, ErrInUse, holder, path)
		}
		t := time.NewTimer(min(left, 200*time.Millisecond))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	host, _ := os.Hostname()
	note := fmt.Sprintf("pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(note), 0)
	}
	return func() {
		_ = f.Truncate(0)
		_ = unlockFile(f)
		f.Close()
	}, nil
}

// holderOf reads who holds the lock, as the holder wrote it.
func holderOf(f *os.File) string {
	b := make([]byte, 200)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return "held by " + s
	}
	return "held by a process that has not said who it is"
}
