package runtime

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	o := parseMountOptions([]string{"nosuid", "noexec", "ro", "rw", "rbind", "rslave", "mode=755", "size=65536k", "tmpcopyup"})
	flags, prop, data := o.flags, o.prop, o.data
	want := uintptr(unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_BIND | unix.MS_REC)
	if flags != want {
		t.Errorf("flags = %#x, want %#x", flags, want)
	}
	if len(prop) != 1 || prop[0] != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("propagation = %v", prop)
	}
	if data != "mode=755,size=65536k" {
		t.Errorf("data = %q", data)
	}
}

func TestParseRecursiveMountOptions(t *testing.T) {
	for _, tc := range []struct {
		opts     []string
		set, clr uint64
	}{
		{[]string{"rbind", "rro"}, unix.MOUNT_ATTR_RDONLY, 0},
		{[]string{"rro", "rrw"}, 0, unix.MOUNT_ATTR_RDONLY},
		{[]string{"rrw", "rro", "rnosuid"}, unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID, unix.MOUNT_ATTR_RDONLY},
		{[]string{"rnoatime", "rstrictatime"}, unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
		{[]string{"rnoatime", "rrelatime"}, unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	} {
		o := parseMountOptions(tc.opts)
		if !o.recursive || o.rec.Attr_set != tc.set || o.rec.Attr_clr != tc.clr || o.data != "" {
			t.Errorf("%v: set %#x clear %#x data %q, want set %#x clear %#x", tc.opts, o.rec.Attr_set, o.rec.Attr_clr, o.data, tc.set, tc.clr)
		}
	}
	if o := parseMountOptions([]string{"rbind", "ro"}); o.recursive {
		t.Errorf("ro is not recursive: %+v", o.rec)
	}
}
