package runtime

import (
	"bytes"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

// Linux security modules. A label or profile the host cannot apply is
// refused at create, as runc does, rather than ignored: a container the
// user asked to confine must not run unconfined.

// AppArmorEnabled reports whether the kernel enforces AppArmor.
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && bytes.HasPrefix(b, []byte("Y"))
}

// selinuxEnabled reports whether SELinux is mounted (enforcing or not).
func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// checkLSM refuses the labels and profiles of s that this host cannot apply.
func checkLSM(s *specs.Spec) error {
	if s.Process.ApparmorProfile != "" && !AppArmorEnabled() {
		return invalid("apparmor profile %q is specified in config, but apparmor is disabled or not supported on this host", s.Process.ApparmorProfile)
	}
	for _, l := range []struct{ field, label string }{
		{"process.selinuxLabel", s.Process.SelinuxLabel},
		{"linux.mountLabel", s.Linux.MountLabel},
	} {
		if l.label == "" {
			continue
		}
		if !selinuxEnabled() {
			return invalid("%s %q is specified in config, but selinux is disabled or not supported on this host", l.field, l.label)
		}
		return fmt.Errorf("%s %q: SELinux labels are not supported by tent-runtime yet: %w", l.field, l.label, errdefs.ErrNotImplemented)
	}
	return nil
}

// applyAppArmor has the kernel confine the program that this thread
// executes next with profile (checked by checkLSM).
func applyAppArmor(profile string) error {
	if profile == "" {
		return nil
	}
	attr := "/proc/thread-self/attr/apparmor/exec"
	if _, err := os.Stat(attr); err != nil {
		attr = "/proc/thread-self/attr/exec" // kernels before 5.8
	}
	if err := os.WriteFile(attr, []byte("exec "+profile), 0); err != nil {
		return fmt.Errorf("apparmor profile %q: %w", profile, err)
	}
	return nil
}
