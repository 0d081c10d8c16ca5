package storagetest

import (
	"strings"
	"testing"
	"time"
)

// The suite is only as good as its comparison: check that diff reports
// what storage must not do and accepts what it may.
func TestDiff(t *testing.T) {
	type row struct {
		At    time.Time
		When  *time.Time
		List  []string
		Bytes []byte
		N     *int
		S     string
	}
	at := time.Date(2031, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	stored := at.Truncate(time.Microsecond).UTC()
	for _, tc := range []struct {
		name     string
		got      row
		want     row
		mismatch string // "" if they must match; else a word the report must contain
	}{
		{"storage round-trip matches", row{At: stored, List: nil, Bytes: []byte{}}, row{At: at, List: []string{}, Bytes: nil}, ""},
		{"time off by a microsecond", row{At: stored.Add(time.Microsecond)}, row{At: at}, ".At"},
		{"time not truncated", row{At: at.UTC()}, row{At: at}, ".At"},
		{"time not in UTC", row{At: at.Truncate(time.Microsecond)}, row{At: at}, "UTC"},
		{"nil pointer for a set one", row{At: stored}, row{At: at, When: &at}, ".When"},
		{"set pointer for a nil one", row{At: stored, When: &stored}, row{At: at}, ".When"},
		{"pointed-to time differs", row{At: stored, When: &stored}, row{At: at, When: ptr(at.Add(time.Second))}, ".When"},
		{"zero for a set int pointer", row{At: stored, N: ptr(0)}, row{At: at, N: ptr(1)}, ".N"},
		{"nil for a zero int pointer", row{At: stored}, row{At: at, N: ptr(0)}, ".N"},
		{"missing list element", row{At: stored, List: []string{"a"}}, row{At: at, List: []string{"a", "b"}}, ".List"},
		{"list order", row{At: stored, List: []string{"b", "a"}}, row{At: at, List: []string{"a", "b"}}, ".List[0]"},
		{"bytes differ", row{At: stored, Bytes: []byte{1}}, row{At: at, Bytes: []byte{2}}, ".Bytes"},
		{"string differs", row{At: stored, S: "a"}, row{At: at, S: "b"}, ".S"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := diff(tc.got, tc.want)
			switch {
			case tc.mismatch == "" && d != "":
				t.Errorf("diff reported a difference:\n%s", d)
			case tc.mismatch != "" && !strings.Contains(d, tc.mismatch):
				t.Errorf("diff = %q, want a report mentioning %q", d, tc.mismatch)
			}
		})
	}
}
