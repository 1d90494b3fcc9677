package checks

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-monitor/vigil/internal/text"
)

// formatValue prints a variable's value briefly for a reason or a progress line.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case float64:
		return formatFloat(x)
	case float32:
		return formatFloat(float64(x))
	case string:
		if len(x) > 80 {
			return strconv.Quote(x[:text.CutAt(x, 80)]) + "..."
		}
		return strconv.Quote(x)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return formatList(items)
	case []any:
		return formatList(x)
	case int, int64, bool:
		return fmt.Sprint(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if s := string(b); len(s) > 120 {
		return s[:text.CutAt(s, 120)] + "..."
	}
	return string(b)
}

func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprint(f)
	}
	if math.Abs(f) >= 100 {
		return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
}

func formatList(items []any) string {
	const show = 5
	parts := make([]string, 0, show)
	for i, it := range items {
		if i == show {
			break
		}
		parts = append(parts, formatValue(it))
	}
	s := "[" + strings.Join(parts, ", ")
	if len(items) > show {
		s += fmt.Sprintf(", ... %d in all", len(items))
	}
	return s + "]"
}

// formatStatuses prints counts by status: "200×98, 503×2".
func formatStatuses(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// formatLabels prints a label set as Prometheus does: name{a="1", b="2"}.
func formatLabels(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}
