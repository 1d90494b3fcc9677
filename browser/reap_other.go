//go:build !linux

package browser

import (
	"context"
	"log/slog"
	"sync"
)

// reaper is a no-op outside Linux: only Linux containers run vigil as PID 1.
type reaper struct{}

func startReaper(context.Context, *sync.WaitGroup, *slog.Logger, func(int) bool) *reaper {
	return nil
}

func (r *reaper) sweep() {}
