package seccomp

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run executes prog on a seccomp_data for (arch, nr, args) in x/net/bpf's
// VM. The VM loads words big-endian, so each word is stored that way.
func run(t *testing.T, prog []unix.SockFilter, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("program rejected: %v", err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	out, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}

func errnoRet(n uint) *uint { return &n }

func TestCompileRules(t *testing.T) {
	prof := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "no_such_syscall"}, Action: specs.ActAllow},
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(unix.EACCES))},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.CLONE_NEWNS | unix.CLONE_NEWUSER, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
			{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 10, Op: specs.OpLessThan}, {Index: 1, Value: 1 << 33, Op: specs.OpNotEqual}}},
			{Names: []string{"tkill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1 << 32, Op: specs.OpGreaterEqual}}},
		},
	}
	prog, err := Compile(prof)
	if err != nil {
		t.Fatal(err)
	}
	x64 := uint32(unix.AUDIT_ARCH_X86_64)
	eperm := uint32(retErrno | unix.EPERM)
	for _, tc := range []struct {
		name string
		arch uint32
		nr   uint32
		args []uint64
		want uint32
	}{
		{"read allowed", x64, unix.SYS_READ, nil, retAllow},
		{"write allowed", x64, unix.SYS_WRITE, nil, retAllow},
		{"open default", x64, unix.SYS_OPEN, nil, eperm},
		{"mkdir custom errno", x64, unix.SYS_MKDIR, nil, retErrno | uint32(unix.EACCES)},
		{"personality match", x64, unix.SYS_PERSONALITY, []uint64{0xffffffff}, retAllow},
		{"personality high word differs", x64, unix.SYS_PERSONALITY, []uint64{0x1ffffffff}, eperm},
		{"personality other", x64, unix.SYS_PERSONALITY, []uint64{8}, eperm},
		{"clone plain", x64, unix.SYS_CLONE, []uint64{17}, retAllow},
		{"clone newns", x64, unix.SYS_CLONE, []uint64{unix.CLONE_NEWNS | 17}, eperm},
		{"kill small", x64, unix.SYS_KILL, []uint64{1, 9}, retAllow},
		{"kill big", x64, unix.SYS_KILL, []uint64{1, 10}, eperm},
		{"kill huge", x64, unix.SYS_KILL, []uint64{1, 1<<32 | 1}, eperm},
		{"tkill ge", x64, unix.SYS_TKILL, []uint64{1 << 32}, retAllow},
		{"tkill lt", x64, unix.SYS_TKILL, []uint64{0xffffffff}, eperm},
		{"x32 killed", x64, x32Bit | unix.SYS_READ, nil, retKillProcess},
		{"i386 read allowed", unix.AUDIT_ARCH_I386, 3, nil, retAllow},
		{"i386 other", unix.AUDIT_ARCH_I386, 5, nil, eperm},
		{"unknown arch", unix.AUDIT_ARCH_AARCH64, 63, nil, retKillProcess},
	} {
		if got := run(t, prog, tc.arch, tc.nr, tc.args...); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, p := range []*specs.LinuxSeccomp{
		{DefaultAction: "SCMP_ACT_BOGUS"},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 7, Op: specs.OpEqualTo}}}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_WHAT"}}}}},
	} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%+v) succeeded, want an error", p)
		}
	}
}

func TestDefaultProfile(t *testing.T) {
	prog, err := Compile(DefaultProfile([]string{"CAP_KILL"}))
	if err != nil {
		t.Fatal(err)
	}
	x64 := uint32(unix.AUDIT_ARCH_X86_64)
	eperm := uint32(retErrno | unix.EPERM)
	for _, tc := range []struct {
		name string
		nr   uint32
		args []uint64
		want uint32
	}{
		{"read", unix.SYS_READ, nil, retAllow},
		{"mount", unix.SYS_MOUNT, nil, eperm},
		{"unshare", unix.SYS_UNSHARE, nil, eperm},
		{"fork via clone", unix.SYS_CLONE, []uint64{17}, retAllow},
		{"clone newuser", unix.SYS_CLONE, []uint64{unix.CLONE_NEWUSER}, eperm},
		{"clone3", unix.SYS_CLONE3, nil, retErrno | uint32(unix.ENOSYS)},
		{"socket inet", unix.SYS_SOCKET, []uint64{unix.AF_INET}, retAllow},
		{"socket vsock", unix.SYS_SOCKET, []uint64{unix.AF_VSOCK}, eperm},
		{"personality linux", unix.SYS_PERSONALITY, []uint64{0}, retAllow},
		{"personality odd", unix.SYS_PERSONALITY, []uint64{0x0400000}, eperm},
		{"kexec", unix.SYS_KEXEC_LOAD, nil, eperm},
		{"init_module", unix.SYS_INIT_MODULE, nil, eperm},
	} {
		if got := run(t, prog, x64, tc.nr, tc.args...); got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.name, got, tc.want)
		}
	}
	admin, err := Compile(DefaultProfile([]string{"CAP_SYS_ADMIN"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, admin, x64, unix.SYS_MOUNT); got != retAllow {
		t.Errorf("mount with CAP_SYS_ADMIN: got %#x", got)
	}
	if got := run(t, admin, x64, unix.SYS_CLONE, unix.CLONE_NEWNS); got != retAllow {
		t.Errorf("clone newns with CAP_SYS_ADMIN: got %#x", got)
	}
}
