// Package memlimit sets Go's soft memory limit from the memory limit of the container the
// process runs in, as Prometheus's --auto-gomemlimit does. Go's collector lets the heap
// grow to twice what is live before it collects; under a container's limit, a peak (a
// large /metrics scrape, every check's first run at once) can then reach the limit and the
// kernel kills the process. With a soft limit below the container's, the collector works
// harder as the heap nears it instead. It also paces the collector's percentage (GOGC) from
// the heap (gcpercent.go).
package memlimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// unlimited is where a limit counts as none: cgroup v1 writes "no limit" as the largest
// page-aligned int64 (9223372036854771712).
const unlimited = 1 << 62

// Limit returns the memory limit of the cgroup the process is in, in bytes, 0 when there
// is none. procCgroup is the contents of /proc/self/cgroup; cgroups is the cgroup
// filesystems' mount point (/sys/fs/cgroup). Under cgroup v2 it is the smallest
// memory.max of the process's cgroup and its ancestors; under v1 the memory controller's
// hierarchical_memory_limit, which already takes the ancestors'. A cgroup path the
// process's mount namespace does not show (a container without its own cgroup namespace
// sees its own cgroup at the mount point) is looked for at the mount point.
func Limit(cgroups fs.FS, procCgroup string) (int64, error) {
	var v2 string
	hasV2 := false
	for line := range strings.Lines(procCgroup) {
		parts := strings.SplitN(strings.TrimRight(line, "\r\n"), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, hasV2 = parts[2], true
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "memory" {
				return v1Limit(cgroups, parts[2])
			}
		}
	}
	if !hasV2 {
		return 0, nil
	}
	return v2Limit(cgroups, v2)
}

func v1Limit(cgroups fs.FS, cgroup string) (int64, error) {
	for _, dir := range []string{path.Join("memory", cgroup), "memory"} {
		name := path.Join(dir, "memory.stat")
		f, err := cgroups.Open(clean(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "hierarchical_memory_limit "); ok {
				return parseLimit(name, v)
			}
		}
		if err := sc.Err(); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return 0, nil // a kernel without the line: no limit known
	}
	return 0, nil
}

func v2Limit(cgroups fs.FS, cgroup string) (int64, error) {
	var limit int64
	found := false
	for dir := path.Clean("/" + cgroup); ; dir = path.Dir(dir) {
		l, ok, err := readMax(cgroups, path.Join(dir, "memory.max"))
		if err != nil {
			return 0, err
		}
		if ok {
			found = true
			if l > 0 && (limit == 0 || l < limit) {
				limit = l
			}
		}
		if dir == "/" {
			break
		}
	}
	if !found { // the path is not under this mount: the mount point is the process's cgroup
		l, _, err := readMax(cgroups, "memory.max")
		return l, err
	}
	return limit, nil
}

// readMax reads a cgroup v2 memory.max: "max" or bytes. ok is false when there is no file.
func readMax(cgroups fs.FS, name string) (int64, bool, error) {
	b, err := fs.ReadFile(cgroups, clean(name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return 0, true, nil
	}
	l, err := parseLimit(name, v)
	return l, true, err
}

func parseLimit(name, v string) (int64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number of bytes", name, v)
	}
	if n >= unlimited || n == 0 {
		return 0, nil
	}
	return int64(n), nil
}

// clean makes a slash path one fs.FS takes: relative, and "." for the root.
func clean(name string) string {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		return "."
	}
	return name
}

// ErrRatio is Set's error for a ratio that is not a share.
var ErrRatio = errors.New("--memory-limit-ratio: want a share of the container's memory limit, above 0 and at most 1 (0 turns it off)")

// ReadContainer reads the memory limit of the container this process runs in (see
// Limit); 0 when it has none, or when there are no cgroups here.
func ReadContainer() (int64, error) {
	procCgroup, err := os.ReadFile("/proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return Limit(os.DirFS("/sys/fs/cgroup"), string(procCgroup))
}

// Follow keeps the soft limit Set applied in step with the container's: every interval
// until ctx ends it reads the container's limit again (read, ReadContainer in the agent)
// and, when it moved (a pod resized in place), sets ratio of the new one, or none when the
// container has none any more. It reports each change, and each new error, to changed.
func Follow(ctx context.Context, from Applied, ratio float64, every time.Duration, read func() (int64, error), changed func(Applied, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	last, lastErr := from.Container, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		container, err := read()
		if err != nil {
			if err.Error() != lastErr {
				lastErr = err.Error()
				changed(Applied{}, err)
			}
			continue
		}
		lastErr = ""
		if container == last {
			continue
		}
		last = container
		a := Applied{Container: container, Limit: math.MaxInt64, Why: "the container has no memory limit any more"}
		if container > 0 {
			a.Limit, a.Why = int64(float64(container)*ratio), fmt.Sprintf("%v of the container's new limit", ratio)
		}
		debug.SetMemoryLimit(a.Limit)
		changed(a, nil)
	}
}

// Applied is what Set did.
type Applied struct {
	Container int64  // the container's limit in bytes; 0 for none
	Limit     int64  // Go's soft memory limit now; math.MaxInt64 for none
	Why       string // why it is what it is, for the log
}

// Set sets Go's soft memory limit to ratio of the container's memory limit. It leaves it
// alone when GOMEMLIMIT is set (the operator's choice wins), when ratio is 0 (turned off)
// and when the container has no limit.
func Set(ratio float64) (Applied, error) {
	current := debug.SetMemoryLimit(-1)
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		return Applied{Limit: current, Why: "GOMEMLIMIT is set"}, nil
	}
	if ratio == 0 {
		return Applied{Limit: current, Why: "turned off (--memory-limit-ratio 0)"}, nil
	}
	if ratio < 0 || ratio > 1 || math.IsNaN(ratio) {
		return Applied{Limit: current}, fmt.Errorf("%w; got %v", ErrRatio, ratio)
	}
	container, err := ReadContainer()
	if err != nil || container == 0 {
		return Applied{Limit: current, Why: "the container has no memory limit"}, err
	}
	limit := int64(float64(container) * ratio)
	debug.SetMemoryLimit(limit)
	return Applied{Container: container, Limit: limit, Why: fmt.Sprintf("%v of the container's limit", ratio)}, nil
}
