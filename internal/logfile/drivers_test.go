package logfile

import (
	"maps"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/errdefs"
)

func TestMerge(t *testing.T) {
	def := map[string]string{"max-size": "1m", "max-file": "2"}
	for _, tc := range []struct {
		driver     string
		opts       map[string]string
		defDriver  string
		wantDriver string
		want       map[string]string
	}{
		{"", nil, "", "json-file", def},
		{"", nil, "local", "local", def},
		{"", map[string]string{"max-size": "5m"}, "local", "local", map[string]string{"max-size": "5m", "max-file": "2"}},
		{"json-file", nil, "local", "json-file", map[string]string{}},
		{"json-file", nil, "", "json-file", def},
		{"none", nil, "json-file", "none", map[string]string{}},
	} {
		d, o := Merge(tc.driver, tc.opts, tc.defDriver, def)
		if d != tc.wantDriver || !maps.Equal(o, tc.want) {
			t.Errorf("Merge(%q, %v, %q): %q %v, want %q %v", tc.driver, tc.opts, tc.defDriver, d, o, tc.wantDriver, tc.want)
		}
	}
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		driver string
		opts   map[string]string
		want   Options
		err    string
	}{
		{"json-file", nil, Options{Format: JSONFile, MaxSize: -1, MaxFiles: 1}, ""},
		{"local", nil, Options{Format: Local, MaxSize: 20 << 20, MaxFiles: 5, Compress: true}, ""},
		{"local", map[string]string{"compress": "false", "max-file": "1"}, Options{Format: Local, MaxSize: 20 << 20, MaxFiles: 1}, ""},
		{"json-file", map[string]string{"max-size": "10k", "max-file": "3", "compress": "true"}, Options{Format: JSONFile, MaxSize: 10 << 10, MaxFiles: 3, Compress: true}, ""},
		{"none", map[string]string{"anything": "x"}, Options{}, ""},
		{"json-file", map[string]string{"compress": "true", "max-size": "1m"}, Options{}, "compress cannot be true"},
		{"json-file", map[string]string{"compress": "yes"}, Options{}, `invalid compress "yes"`},
		{"local", map[string]string{"max-size": "-1"}, Options{}, `invalid max-size "-1" for the local log driver`},
		{"local", map[string]string{"env": "A"}, Options{}, "unknown log opt 'env' for local log driver"},
		{"syslog", nil, Options{}, "no log driver named 'syslog'"},
	} {
		o, err := Configure(tc.driver, tc.opts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("Configure(%q, %v): %v, want an invalid argument saying %q", tc.driver, tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || o != tc.want {
			t.Errorf("Configure(%q, %v): %+v %v, want %+v", tc.driver, tc.opts, o, err, tc.want)
		}
	}
}
