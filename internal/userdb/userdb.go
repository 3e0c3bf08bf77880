// Package userdb resolves a container's users and groups in its own
// /etc/passwd and /etc/group, as docker does (never the host's: the
// files are read below the container's root, symlinks resolved inside
// it). It is small on purpose: the VM agent links it.
package userdb

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

// ResolveUser turns "user[:group]" (names or numbers) into IDs using the
// container's /etc/passwd and /etc/group, as docker does.
func ResolveUser(rootfs, spec string) (specs.User, error) {
	var u specs.User
	if spec == "" {
		spec = "0"
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	passwd := readColonFile(rootfs, "/etc/passwd")
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		for _, e := range passwd {
			if len(e) > 3 && e[2] == name {
				if g, err := strconv.ParseUint(e[3], 10, 32); err == nil {
					u.GID = uint32(g)
				}
				name = e[0]
				break
			}
		}
	} else {
		found := false
		for _, e := range passwd {
			if len(e) > 3 && e[0] == name {
				uid, err1 := strconv.ParseUint(e[2], 10, 32)
				gid, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 == nil && err2 == nil {
					u.UID, u.GID, found = uint32(uid), uint32(gid), true
					break
				}
			}
		}
		if !found {
			return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	groups := readColonFile(rootfs, "/etc/group")
	if hasGroup {
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			found := false
			for _, e := range groups {
				if len(e) > 2 && e[0] == group {
					if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil {
						u.GID, found = uint32(gid), true
						break
					}
				}
			}
			if !found {
				return u, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", group, errdefs.ErrInvalidArgument)
			}
		}
	}
	// Supplementary groups: those that list the user as a member.
	for _, e := range groups {
		if len(e) > 3 && slices.Contains(strings.Split(e[3], ","), name) {
			if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil && uint32(gid) != u.GID {
				u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
			}
		}
	}
	return u, nil
}

// readColonFile reads a passwd-style file of the container, resolved
// inside its root; a missing file is empty.
func readColonFile(rootfs, path string) [][]string {
	p, err := securejoin.SecureJoin(rootfs, path)
	if err != nil {
		return nil
	}
	// The image is untrusted: no following a last-moment symlink, no
	// blocking on a fifo, only regular files, and at most 4 MiB.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// ResolveGroups turns --group-add values (names or numbers) into IDs
// using the container's /etc/group, as docker does.
func ResolveGroups(rootfs string, names []string) ([]uint32, error) {
	var out []uint32
	var groups [][]string
	for _, n := range names {
		if id, err := strconv.ParseUint(n, 10, 32); err == nil {
			out = append(out, uint32(id))
			continue
		}
		if groups == nil {
			groups = readColonFile(rootfs, "/etc/group")
		}
		found := false
		for _, e := range groups {
			if len(e) > 2 && e[0] == n {
				if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil {
					out, found = append(out, uint32(gid)), true
					break
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", n, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}
