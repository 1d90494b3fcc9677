//go:build !linux

package binpages

// Drop does nothing here: the mappings are read from Linux's /proc.
func Drop(evict bool) (Result, error) { return Result{}, ErrUnsupported }
