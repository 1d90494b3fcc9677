package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// interrupted is the cause of a context ended by SIGINT or SIGTERM: a person's Ctrl-C, or a
// pipeline's runner cancelling the job.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return fmt.Sprintf("interrupted (%s)", i.name()) }

// name is the signal's name as a shell and a runner's log write it: SIGINT, SIGTERM.
func (i interrupted) name() string {
	switch i.sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return i.sig.String()
}

// code is the exit code a shell reports for a process the signal ended: 130 for SIGINT,
// 143 for SIGTERM.
func (i interrupted) code() int {
	if s, ok := i.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitFailed
}

// notifyInterrupt returns a context cancelled, with an interrupted cause, by the first
// SIGINT or SIGTERM. After that first one the signals are let go: a second one ends the
// process at once, should what the command still does hang. stop releases them too.
func notifyInterrupt(parent context.Context) (context.Context, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			cancel(interrupted{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// interruption is ctx's interrupted cause, if a signal ended it.
func interruption(ctx context.Context) (interrupted, bool) {
	var i interrupted
	ok := errors.As(context.Cause(ctx), &i)
	return i, ok
}
