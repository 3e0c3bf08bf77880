package seccomp

import (
	"fmt"
	"sort"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Return values of a filter (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	x32Bit = 0x40000000
)

// Classic BPF opcodes.
const (
	ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeqK  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgtK  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	jgeK  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	ja    = unix.BPF_JMP | unix.BPF_JA
	retK  = unix.BPF_RET | unix.BPF_K
	andK  = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// table maps syscall names to numbers: sorted by name, searched in halves.
type table []struct {
	name string
	nr   uint32
}

func (t table) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}

// arch describes one architecture a filter can cover.
type arch struct {
	audit uint32
	table table
}

var arches = map[specs.Arch]arch{
	specs.ArchX86_64:  {unix.AUDIT_ARCH_X86_64, syscalls_amd64},
	specs.ArchX86:     {unix.AUDIT_ARCH_I386, syscalls_x86},
	specs.ArchAARCH64: {unix.AUDIT_ARCH_AARCH64, syscalls_arm64},
	specs.ArchARM:     {unix.AUDIT_ARCH_ARM, syscalls_arm},
}

// SyscallNumber returns the number of a syscall on the native architecture.
func SyscallNumber(name string) (uint32, bool) {
	return arches[nativeArch].table.lookup(name)
}

// action maps an OCI action to a filter return value.
func action(a specs.LinuxSeccompAction, errnoRet *uint, defErrno *uint) (uint32, error) {
	errno := uint32(unix.EPERM)
	if errnoRet != nil {
		errno = uint32(*errnoRet)
	} else if defErrno != nil {
		errno = uint32(*defErrno)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActErrno:
		return retErrno | (errno & 0xffff), nil
	case specs.ActTrace:
		return retTrace | (errno & 0xffff), nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp: action %s needs a listener, which tent does not support", a)
	}
	return 0, fmt.Errorf("seccomp: unknown action %q", a)
}

// Compile turns an OCI seccomp section into a BPF program.
func Compile(c *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	def, err := action(c.DefaultAction, c.DefaultErrnoRet, nil)
	if err != nil {
		return nil, err
	}
	listed := map[specs.Arch]bool{}
	for _, a := range c.Architectures {
		listed[a] = true
	}
	// The native architecture is always filtered; others only when listed
	// and known. x32 shares x86_64's audit arch and is handled inside it.
	order := []specs.Arch{nativeArch}
	for _, a := range c.Architectures {
		if _, known := arches[a]; known && a != nativeArch {
			order = append(order, a)
		}
	}
	sort.SliceStable(order[1:], func(i, j int) bool { return order[1+i] < order[1+j] })

	var sections [][]unix.SockFilter
	for _, a := range order {
		sec, err := compileArch(c, arches[a], def)
		if err != nil {
			return nil, err
		}
		if a == specs.ArchX86_64 {
			// x32 syscalls carry bit 30 in their number.
			x32 := uint32(retKillProcess)
			if listed[specs.ArchX32] {
				x32 = def
			}
			sec = append([]unix.SockFilter{
				{Code: ldAbs, K: offNr},
				{Code: jgeK, K: x32Bit, Jt: 0, Jf: 1},
				{Code: retK, K: x32},
			}, sec...)
		}
		sections = append(sections, sec)
	}
	// Dispatch: per arch "jeq arch; ja section", then kill.
	prog := []unix.SockFilter{{Code: ldAbs, K: offArch}}
	head := 1 + 2*len(order) + 1
	offset := 0
	for i, a := range order {
		// After the jeq at index 1+2i and the ja at 2+2i, the section starts
		// at head+offset.
		prog = append(prog,
			unix.SockFilter{Code: jeqK, K: arches[a].audit, Jt: 0, Jf: 1},
			unix.SockFilter{Code: ja, K: uint32(head + offset - (2 + 2*i) - 1)})
		offset += len(sections[i])
	}
	prog = append(prog, unix.SockFilter{Code: retK, K: retKillProcess})
	for _, s := range sections {
		prog = append(prog, s...)
	}
	if len(prog) > 4096 {
		return nil, fmt.Errorf("seccomp: program of %d instructions exceeds the kernel's 4096", len(prog))
	}
	return prog, nil
}

// compileArch emits the rules for one architecture. Consecutive rules
// without argument conditions and with the same action share one block:
// one jeq per syscall and a single return.
func compileArch(c *specs.LinuxSeccomp, a arch, def uint32) ([]unix.SockFilter, error) {
	var out []unix.SockFilter
	var pending []uint32
	pendingAct := uint32(0)
	flush := func() {
		for len(pending) > 0 {
			n := len(pending)
			if n > 200 {
				n = 200
			}
			out = append(out, unix.SockFilter{Code: ldAbs, K: offNr})
			for i, nr := range pending[:n] {
				out = append(out, unix.SockFilter{Code: jeqK, K: nr, Jt: uint8(n - i), Jf: 0})
			}
			out = append(out,
				unix.SockFilter{Code: ja, K: 1},
				unix.SockFilter{Code: retK, K: pendingAct})
			pending = pending[n:]
		}
	}
	for _, rule := range c.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet, c.DefaultErrnoRet)
		if err != nil {
			return nil, err
		}
		for _, name := range rule.Names {
			nr, ok := a.table.lookup(name)
			if !ok {
				continue // not a syscall of this architecture, as libseccomp skips it
			}
			if len(rule.Args) == 0 {
				if len(pending) > 0 && pendingAct != act {
					flush()
				}
				pendingAct = act
				pending = append(pending, nr)
				continue
			}
			flush()
			block, err := argBlock(nr, rule.Args, act)
			if err != nil {
				return nil, fmt.Errorf("seccomp: %s: %w", name, err)
			}
			out = append(out, block...)
		}
	}
	flush()
	return append(out, unix.SockFilter{Code: retK, K: def}), nil
}

// argBlock emits: if nr matches and every condition holds, return act;
// otherwise fall through to the next block.
func argBlock(nr uint32, args []specs.LinuxSeccompArg, act uint32) ([]unix.SockFilter, error) {
	const fail = 0xff // placeholder, patched to the end of the block
	b := []unix.SockFilter{{Code: ldAbs, K: offNr}, {Code: jeqK, K: nr, Jt: 0, Jf: fail}}
	type patch struct {
		at int
		jt bool
	}
	var patches []patch
	patches = append(patches, patch{1, false})
	emit := func(f unix.SockFilter, failJt, failJf bool) {
		if failJt {
			patches = append(patches, patch{len(b), true})
		}
		if failJf {
			patches = append(patches, patch{len(b), false})
		}
		b = append(b, f)
	}
	for _, arg := range args {
		if arg.Index > 5 {
			return nil, fmt.Errorf("argument index %d out of range", arg.Index)
		}
		lo := uint32(offArgs + 8*arg.Index)
		hi := lo + 4
		vlo, vhi := uint32(arg.Value), uint32(arg.Value>>32)
		ld := func(off uint32) { emit(unix.SockFilter{Code: ldAbs, K: off}, false, false) }
		switch arg.Op {
		case specs.OpEqualTo:
			ld(hi)
			emit(unix.SockFilter{Code: jeqK, K: vhi}, false, true)
			ld(lo)
			emit(unix.SockFilter{Code: jeqK, K: vlo}, false, true)
		case specs.OpNotEqual:
			ld(hi)
			emit(unix.SockFilter{Code: jeqK, K: vhi, Jf: 2}, false, false)
			ld(lo)
			emit(unix.SockFilter{Code: jeqK, K: vlo}, true, false)
		case specs.OpGreaterThan, specs.OpGreaterEqual:
			last := uint16(jgtK)
			if arg.Op == specs.OpGreaterEqual {
				last = jgeK
			}
			ld(hi)
			emit(unix.SockFilter{Code: jgtK, K: vhi, Jt: 3}, false, false)
			emit(unix.SockFilter{Code: jeqK, K: vhi}, false, true)
			ld(lo)
			emit(unix.SockFilter{Code: last, K: vlo}, false, true)
		case specs.OpLessThan, specs.OpLessEqual:
			last := uint16(jgeK)
			if arg.Op == specs.OpLessEqual {
				last = jgtK
			}
			ld(hi)
			emit(unix.SockFilter{Code: jgtK, K: vhi}, true, false)
			emit(unix.SockFilter{Code: jeqK, K: vhi, Jf: 2}, false, false)
			ld(lo)
			emit(unix.SockFilter{Code: last, K: vlo}, true, false)
		case specs.OpMaskedEqual:
			mlo, mhi := uint32(arg.Value), uint32(arg.Value>>32)
			wlo, whi := uint32(arg.ValueTwo), uint32(arg.ValueTwo>>32)
			ld(hi)
			emit(unix.SockFilter{Code: andK, K: mhi}, false, false)
			emit(unix.SockFilter{Code: jeqK, K: whi}, false, true)
			ld(lo)
			emit(unix.SockFilter{Code: andK, K: mlo}, false, false)
			emit(unix.SockFilter{Code: jeqK, K: wlo}, false, true)
		default:
			return nil, fmt.Errorf("unknown operator %q", arg.Op)
		}
	}
	b = append(b, unix.SockFilter{Code: retK, K: act})
	end := len(b)
	for _, p := range patches {
		off := end - p.at - 1
		if off > 255 {
			return nil, fmt.Errorf("too many conditions")
		}
		if p.jt {
			b[p.at].Jt = uint8(off)
		} else {
			b[p.at].Jf = uint8(off)
		}
	}
	return b, nil
}

// Flags the kernel takes at load time.
var loadFlags = map[specs.LinuxSeccompFlag]uintptr{
	specs.LinuxSeccompFlagLog:                           unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:                     unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv:              1 << 5, // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	specs.LinuxSeccompFlag("SECCOMP_FILTER_FLAG_TSYNC"): unix.SECCOMP_FILTER_FLAG_TSYNC,
}

// Install loads prog as the calling thread's filter.
func Install(prog []unix.SockFilter, flags []specs.LinuxSeccompFlag) error {
	var f uintptr
	for _, fl := range flags {
		v, ok := loadFlags[fl]
		if !ok {
			return fmt.Errorf("seccomp: unknown flag %q", fl)
		}
		f |= v
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp: load filter: %w", e)
	}
	return nil
}
