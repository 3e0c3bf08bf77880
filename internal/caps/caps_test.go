package caps

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"CAP_CHOWN", 0, true},
		{"net_admin", 12, true},
		{"SYS_ADMIN", 21, true},
		{"CAP_CHECKPOINT_RESTORE", 40, true},
		{"CAP_BOGUS", 0, false},
		{"", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestMask(t *testing.T) {
	m, err := Mask([]string{"CAP_CHOWN", "CAP_KILL"})
	if err != nil || m != 1|1<<5 {
		t.Fatalf("Mask = %#x, %v", m, err)
	}
	if _, err := Mask([]string{"CAP_NOPE"}); err == nil {
		t.Fatal("Mask accepted an unknown capability")
	}
	if Name(21) != "CAP_SYS_ADMIN" {
		t.Fatalf("Name(21) = %s", Name(21))
	}
}
