package configs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes; in YAML a number of bytes or a number with a unit: 500MB,
// 2GB (powers of 1000), 512MiB, 1GiB (powers of 1024).
type ByteSize int64

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1e9:
		return fmt.Sprintf("%.1fGB", float64(b)/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1fMB", float64(b)/1e6)
	}
	return fmt.Sprintf("%dB", int64(b))
}

var byteUnits = map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}

// ParseByteSize reads "500MB", "1GiB", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToUpper(strings.TrimSpace(s[i:]))
	}
	mult, ok := byteUnits[unit]
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || n < 0 || n*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return ByteSize(n * mult), nil
}

// decodeRaw reads a size as a number of bytes or a number with a unit.
func (b *ByteSize) decodeRaw(d *decoder, path string, raw any) {
	fix := "write a size such as 500MB, 2GB or 1GiB"
	switch v := raw.(type) {
	case int, int64, uint64, float64:
		n, _ := toFloat(v)
		if n < 0 || n != math.Trunc(n) || n > math.MaxInt64/2 {
			// 1e30 was converted as it came and read as -9223372036854775808B.
			d.errorf(path, fix, "%v is not a size", v)
			return
		}
		*b = ByteSize(n)
	case string:
		n, err := ParseByteSize(v)
		if err != nil {
			d.errorf(path, fix, "%v", err)
			return
		}
		*b = n
	default:
		d.errorf(path, fix, "expected a size, got %s", describe(raw))
	}
}
