package agent

// Retention: the store bounded by age and by size.

import (
	"context"
	"time"

	"github.com/vigil-monitor/vigil/configs"
)

// purgeLoop bounds the store by age (store.retention, hourly) and by size (store.max_size,
// every minute; the run writer also does, whenever the runs it wrote add up to a twentieth
// of it).
func (a *Agent) purgeLoop(ctx context.Context) {
	var aged time.Time
	for {
		cfg := a.Runtime().Config.Store
		if now := a.clock.Now(); now.Sub(aged) >= time.Hour {
			aged = now
			n, err := a.store.Purge(ctx, now.Add(-cfg.Retention))
			if err != nil && ctx.Err() == nil {
				a.log.Warn("purging old history failed", "error", err)
			} else if n > 0 {
				a.log.Info("purged history past retention", "rows", n, "retention", cfg.Retention)
			}
			if _, err := a.store.PurgeEvents(ctx, now.Add(-cfg.Retention)); err != nil && ctx.Err() == nil {
				a.log.Warn("purging old events of the status page's timeline failed", "error", err)
			}
		}
		a.purgeToSize(ctx, cfg.MaxSize)
		t := a.clock.NewTimer(time.Minute)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

func (a *Agent) purgeToSize(ctx context.Context, max configs.ByteSize) {
	n, size, err := a.store.PurgeToSize(ctx, int64(max))
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("keeping the store under store.max_size failed", "max_size", max, "error", err)
		}
		return
	}
	a.metrics.storeBytes.Set(float64(size))
	if n > 0 {
		a.log.Info("the store reached store.max_size: deleted the oldest history", "rows", n,
			"size", configs.ByteSize(size), "max_size", max)
	}
}
