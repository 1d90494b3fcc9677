package checks

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// go-kit's loggers (Loki's, Prometheus's) write level=warn ts=..., and journald's exports
// put the time in __REALTIME_TIMESTAMP: such lines carry a time, which was not read, so
// on a first read their warnings were undated and not counted.
func TestLogscanLogfmtAndJournaldTimes(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	now := time.Now()
	iso := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339Nano) }
	micro := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMicro(), 10) }
	appendLog(t, log,
		"level=warn ts="+iso(-time.Hour)+` caller=pool.go:42 msg="Possible connection leak detected (an hour ago)"`,
		"level=warn ts="+iso(-time.Minute)+` caller=pool.go:42 msg="Possible connection leak detected (go-kit)"`,
		`{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"`+micro(-time.Minute)+`","PRIORITY":"4","MESSAGE":"Possible connection leak detected (journalctl -o json)"}`,
		"__CURSOR=s=2", "__REALTIME_TIMESTAMP="+micro(-time.Minute), "PRIORITY=4",
		"MESSAGE=Possible connection leak detected (journalctl -o export)", "")
	c := buildOne(t, logscanYAML(fmt.Sprintf("{file: %q}", log), ""))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "matches = 3 ")
	if res.Vars["undated"] != 0 {
		t.Fatalf("undated = %v", res.Vars["undated"])
	}
}
