package memlimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestLimit(t *testing.T) {
	const gib = 1 << 30
	v1Stat := func(limit string) string {
		return "cache 0\nrss 4096\nhierarchical_memory_limit " + limit + "\nhierarchical_memsw_limit 9223372036854771712\n"
	}
	for _, c := range []struct {
		name       string
		procCgroup string
		fs         fstest.MapFS
		want       int64
		err        string
	}{
		{"v2, the container's own limit", "0::/kubepods/pod1/c1\n", fstest.MapFS{
			"kubepods/pod1/c1/memory.max": file("536870912\n"),
			"kubepods/pod1/memory.max":    file("1073741824\n"),
			"kubepods/memory.max":         file("max\n"),
		}, gib / 2, ""},
		{"v2, the pod's limit when the container has none", "0::/kubepods/pod1/c1\n", fstest.MapFS{
			"kubepods/pod1/c1/memory.max": file("max\n"),
			"kubepods/pod1/memory.max":    file("1073741824\n"),
		}, gib, ""},
		{"v2, no limit anywhere", "0::/user.slice/session-1.scope\n", fstest.MapFS{
			"user.slice/session-1.scope/memory.max": file("max\n"),
			"user.slice/memory.max":                 file("max\n"),
		}, 0, ""},
		{"v2, a cgroup namespace: the process's cgroup is the mount point", "0::/\n", fstest.MapFS{
			"memory.max": file("268435456"),
		}, 256 << 20, ""},
		{"v2, a host path this mount does not show", "0::/system.slice/docker-abc.scope\n", fstest.MapFS{
			"memory.max": file("134217728\n"),
		}, 128 << 20, ""},
		{"v2, the root cgroup (no memory.max)", "0::/\n", fstest.MapFS{"cgroup.procs": file("1\n")}, 0, ""},
		{"v2, a limit that is not a number", "0::/c\n", fstest.MapFS{"c/memory.max": file("lots\n")}, 0, `c/memory.max: "lots" is not a number of bytes`},
		{"v1, a limit", "12:pids:/x\n4:memory:/docker/abc\n1:name=systemd:/x\n", fstest.MapFS{
			"memory/docker/abc/memory.stat": file(v1Stat("209715200")),
		}, 200 << 20, ""},
		{"v1, unlimited", "4:memory:/process_api/1\n", fstest.MapFS{
			"memory/process_api/1/memory.stat": file(v1Stat("9223372036854771712")),
		}, 0, ""},
		{"v1, controllers together, the path not shown", "5:cpu,memory:/docker/abc\n", fstest.MapFS{
			"memory/memory.stat": file(v1Stat("104857600")),
		}, 100 << 20, ""},
		{"v1 and v2 (hybrid): memory is v1's", "4:memory:/a\n0::/a\n", fstest.MapFS{
			"memory/a/memory.stat": file(v1Stat("104857600")),
			"a/memory.max":         file("1048576"),
		}, 100 << 20, ""},
		{"v1, a garbled limit", "4:memory:/a\n", fstest.MapFS{"memory/a/memory.stat": file("hierarchical_memory_limit -5\n")}, 0, "not a number"},
		{"no cgroups", "", fstest.MapFS{}, 0, ""},
		{"garbage", "\x00\n::::\n0:\n", fstest.MapFS{}, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Limit(c.fs, c.procCgroup)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("Limit = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

// The limit of the cgroup this test runs in is read without an error (whatever it is).
func TestLimitHere(t *testing.T) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip("no /proc/self/cgroup:", err)
	}
	if _, err := Limit(os.DirFS("/sys/fs/cgroup"), string(b)); err != nil {
		t.Error(err)
	}
}

// GOMEMLIMIT wins, 0 turns it off, and a ratio out of range is refused: none of them
// changes the process's limit.
func TestSetLeavesAlone(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "100MiB")
	if a, err := Set(0.9); err != nil || a.Why != "GOMEMLIMIT is set" || a.Limit != before {
		t.Errorf("with GOMEMLIMIT: %+v, %v", a, err)
	}
	t.Setenv("GOMEMLIMIT", "")
	if a, err := Set(0); err != nil || !strings.Contains(a.Why, "turned off") {
		t.Errorf("ratio 0: %+v, %v", a, err)
	}
	for _, r := range []float64{-0.5, 1.5, math.NaN()} {
		if _, err := Set(r); err == nil || !strings.Contains(err.Error(), "--memory-limit-ratio") {
			t.Errorf("ratio %v: %v, want an error naming the flag", r, err)
		}
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("the limit moved from %d to %d", before, got)
	}
}

// Whatever the files say, Limit neither panics nor returns a negative limit.
func FuzzLimit(f *testing.F) {
	f.Add("0::/a/b\n", "536870912\n", "hierarchical_memory_limit 9223372036854771712\n")
	f.Add("4:memory:/a\n", "max", "hierarchical_memory_limit 104857600\n")
	f.Add("0::/../..\n", "-1", "hierarchical_memory_limit\n")
	f.Fuzz(func(t *testing.T, procCgroup, max, stat string) {
		fsys := fstest.MapFS{"a/b/memory.max": file(max), "a/memory.max": file(max), "memory.max": file(max),
			"memory/a/memory.stat": file(stat), "memory/memory.stat": file(stat)}
		if l, err := Limit(fsys, procCgroup); l < 0 || err != nil && l != 0 {
			t.Errorf("Limit = %d, %v", l, err)
		}
	})
}

// Follow moves the soft limit when the container's moves, once per change, and reports
// a read error once until it changes; none when the container's limit goes away.
func TestFollow(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	type reading struct {
		limit int64
		err   error
	}
	readings := []reading{{1 << 30, nil}, {2 << 30, nil}, {2 << 30, nil}, {0, errors.New("gone")}, {0, errors.New("gone")},
		{2 << 30, nil}, {0, nil}}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []string
	var limits []int64
	i := 0
	read := func() (int64, error) {
		if i == len(readings) {
			cancel()
			return 0, nil
		}
		r := readings[i]
		i++
		return r.limit, r.err
	}
	Follow(ctx, Applied{Container: 1 << 30}, 0.5, time.Millisecond, read, func(a Applied, err error) {
		if err != nil {
			got = append(got, "error "+err.Error())
			return
		}
		got = append(got, fmt.Sprintf("%d %d", a.Container, a.Limit))
		limits = append(limits, debug.SetMemoryLimit(-1))
	})
	want := []string{"2147483648 1073741824", "error gone", "0 9223372036854775807"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reported %q, want %q", got, want)
	}
	if fmt.Sprint(limits) != "[1073741824 9223372036854775807]" {
		t.Errorf("Go's limit went %v", limits)
	}
}
