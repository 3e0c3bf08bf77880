package runtime

import (
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

type mountFlag struct {
	clear bool
	flag  uintptr
}

// mountFlags are the mount(8) options that are flags rather than data.
var mountFlags = map[string]mountFlag{
	"acl": {false, unix.MS_POSIXACL}, "async": {true, unix.MS_SYNCHRONOUS},
	"atime": {true, unix.MS_NOATIME}, "bind": {false, unix.MS_BIND},
	"defaults": {false, 0}, "dev": {true, unix.MS_NODEV},
	"diratime": {true, unix.MS_NODIRATIME}, "dirsync": {false, unix.MS_DIRSYNC},
	"exec": {true, unix.MS_NOEXEC}, "iversion": {false, unix.MS_I_VERSION},
	"lazytime": {false, unix.MS_LAZYTIME}, "loud": {true, unix.MS_SILENT},
	"mand": {false, unix.MS_MANDLOCK}, "noacl": {true, unix.MS_POSIXACL},
	"noatime": {false, unix.MS_NOATIME}, "nodev": {false, unix.MS_NODEV},
	"nodiratime": {false, unix.MS_NODIRATIME}, "noexec": {false, unix.MS_NOEXEC},
	"noiversion": {true, unix.MS_I_VERSION}, "nolazytime": {true, unix.MS_LAZYTIME},
	"nomand": {true, unix.MS_MANDLOCK}, "norelatime": {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME}, "nosuid": {false, unix.MS_NOSUID},
	"rbind": {false, unix.MS_BIND | unix.MS_REC}, "relatime": {false, unix.MS_RELATIME},
	"remount": {false, unix.MS_REMOUNT}, "ro": {false, unix.MS_RDONLY},
	"rw": {true, unix.MS_RDONLY}, "silent": {false, unix.MS_SILENT},
	"strictatime": {false, unix.MS_STRICTATIME}, "suid": {true, unix.MS_NOSUID},
	"sync": {false, unix.MS_SYNCHRONOUS},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recursiveAttrs are runc's recursive mount options ("rro", "rnosuid",
// ...): mount_setattr(2) attributes set on a mount and every mount below
// it (Linux 5.12), where "ro" and its kin reach only the top mount of an
// rbind. set goes in, clear comes off (the atime options replace the
// whole atime field).
var recursiveAttrs = map[string]struct{ set, clear uint64 }{
	"rro": {unix.MOUNT_ATTR_RDONLY, 0}, "rrw": {0, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {unix.MOUNT_ATTR_NOSUID, 0}, "rsuid": {0, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {unix.MOUNT_ATTR_NODEV, 0}, "rdev": {0, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {unix.MOUNT_ATTR_NOEXEC, 0}, "rexec": {0, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {unix.MOUNT_ATTR_NODIRATIME, 0}, "rdiratime": {0, unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, 0}, "rsymfollow": {0, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rrelatime": {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME}, "rnoatime": {unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR__ATIME},
	"rstrictatime": {unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
}

// RecursiveMountAttrsSupported says whether the kernel has
// mount_setattr(2) (Linux 5.12), which the recursive options need.
var RecursiveMountAttrsSupported = sync.OnceValue(func() bool {
	// An empty change of nothing: EINVAL (or EBADF) where the call
	// exists, ENOSYS where it does not.
	return unix.MountSetattr(-1, "", 0, &unix.MountAttr{}) != unix.ENOSYS
})

// ignoredOptions are OCI or runc extensions that are neither flags nor
// file system data.
var ignoredOptions = map[string]bool{"tmpcopyup": true, "idmap": true, "ridmap": true}

// mountOptions are a mount's options sorted by where they go.
type mountOptions struct {
	flags uintptr   // mount(2)'s
	prop  []uintptr // propagation changes, in order
	data  string    // the file system's
	// rec are the recursive attributes (mount_setattr with AT_RECURSIVE);
	// recursive says whether there are any.
	rec       unix.MountAttr
	recursive bool
}

// parseMountOptions sorts a mount's options into flags, propagation,
// recursive attributes and the data string passed to the file system.
func parseMountOptions(opts []string) mountOptions {
	var o mountOptions
	var d []string
	for _, opt := range opts {
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
			} else {
				o.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationFlags[opt]; ok {
			o.prop = append(o.prop, p)
			continue
		}
		if a, ok := recursiveAttrs[opt]; ok {
			// The kernel clears, then sets: a later option wins.
			o.rec.Attr_set = o.rec.Attr_set&^a.clear | a.set
			o.rec.Attr_clr |= a.clear
			o.recursive = true
			continue
		}
		if ignoredOptions[opt] {
			continue
		}
		d = append(d, opt)
	}
	o.data = strings.Join(d, ",")
	return o
}

// RecursiveMountOptions are the recursive options parseMountOptions
// applies ("rro", ...), for the runtime's features.
func RecursiveMountOptions() []string {
	out := make([]string, 0, len(recursiveAttrs))
	for k := range recursiveAttrs {
		out = append(out, k)
	}
	return out
}

// MountOptions splits mount(8)-style comma-separated options ("bind,ro",
// "size=64m,uid=1000") into mount(2) flags and the file system's data.
// Propagation and recursive options are left out.
func MountOptions(o string) (flags uintptr, data string) {
	if o == "" {
		return 0, ""
	}
	mo := parseMountOptions(strings.Split(o, ","))
	return mo.flags, mo.data
}
