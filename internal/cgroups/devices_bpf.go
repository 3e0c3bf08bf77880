package cgroups

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// On cgroup v2 device access is decided by an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The kernel calls it
// with struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// where access_type is (access << 16) | type, and it returns 1 to allow.

const (
	bpfProgTypeCgroupDevice = 15
	bpfCgroupDevice         = 6 // attach type
	bpfProgLoad             = 5
	bpfProgAttach           = 8

	devBlock = 1
	devChar  = 2
	accMknod = 1
	accRead  = 2
	accWrite = 4
)

// insn is one eBPF instruction.
type insn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

func ldxw(dst, src uint8, off int16) insn { return insn{0x61, dst | src<<4, off, 0} }
func and64(dst uint8, imm int32) insn     { return insn{0x57, dst, 0, imm} }
func rsh64(dst uint8, imm int32) insn     { return insn{0x77, dst, 0, imm} }
func mov64(dst uint8, imm int32) insn     { return insn{0xb7, dst, 0, imm} }
func movReg(dst, src uint8) insn          { return insn{0xbf, dst | src<<4, 0, 0} }
func jne(dst uint8, imm int32, off int16) insn {
	return insn{0x55, dst, off, imm}
}
func exit() insn { return insn{0x95, 0, 0, 0} }

// compileDeviceRules builds the program for rules, which apply in order:
// the last rule that matches a request decides it. A request that no rule
// matches is allowed, as a fresh v1 devices cgroup allows everything.
func compileDeviceRules(rules []specs.LinuxDeviceCgroup) ([]insn, error) {
	prog := []insn{
		ldxw(2, 1, 0), and64(2, 0xffff), // r2 = type
		ldxw(3, 1, 0), rsh64(3, 16), // r3 = access
		ldxw(4, 1, 4), // r4 = major
		ldxw(5, 1, 8), // r5 = minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		var block []insn
		switch r.Type {
		case "", "a":
		case "b":
			block = append(block, jne(2, devBlock, 0))
		case "c":
			block = append(block, jne(2, devChar, 0))
		default:
			return nil, fmt.Errorf("device rule: unknown type %q", r.Type)
		}
		var acc int32
		for _, c := range r.Access {
			switch c {
			case 'r':
				acc |= accRead
			case 'w':
				acc |= accWrite
			case 'm':
				acc |= accMknod
			default:
				return nil, fmt.Errorf("device rule: unknown access %q", r.Access)
			}
		}
		if r.Access == "" {
			acc = accRead | accWrite | accMknod
		}
		if acc != accRead|accWrite|accMknod {
			block = append(block, movReg(0, 3), and64(0, ^acc&7), jne(0, 0, 0))
		}
		if r.Major != nil && *r.Major >= 0 {
			block = append(block, jne(4, int32(*r.Major), 0))
		}
		if r.Minor != nil && *r.Minor >= 0 {
			block = append(block, jne(5, int32(*r.Minor), 0))
		}
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		unconditional := len(block) == 0
		block = append(block, mov64(0, verdict), exit())
		if unconditional {
			// A rule that matches everything decides every request not
			// decided yet: the earlier rules and the default are dead code,
			// which the verifier refuses.
			return append(prog, block...), nil
		}
		// Every jump in the block skips to the end of the block.
		for j := range block {
			if block[j].code == 0x55 {
				block[j].off = int16(len(block) - j - 1)
			}
		}
		prog = append(prog, block...)
	}
	return append(prog, mov64(0, 1), exit()), nil
}

func encode(prog []insn) []byte {
	b := make([]byte, 8*len(prog))
	for i, in := range prog {
		b[8*i] = in.code
		b[8*i+1] = in.regs
		binary.LittleEndian.PutUint16(b[8*i+2:], uint16(in.off))
		binary.LittleEndian.PutUint32(b[8*i+4:], uint32(in.imm))
	}
	return b
}

// setDevicesBPF loads the program for rules and attaches it to the cgroup
// at dir, replacing the program attached before.
func setDevicesBPF(dir string, rules []specs.LinuxDeviceCgroup) error {
	prog, err := compileDeviceRules(rules)
	if err != nil {
		return err
	}
	code := encode(prog)
	license := []byte("GPL\x00")
	logBuf := make([]byte, 64*1024)
	var attr [128]byte
	binary.LittleEndian.PutUint32(attr[0:], bpfProgTypeCgroupDevice)
	binary.LittleEndian.PutUint32(attr[4:], uint32(len(prog)))
	binary.LittleEndian.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&code[0]))))
	binary.LittleEndian.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
	binary.LittleEndian.PutUint32(attr[24:], 1) // log level
	binary.LittleEndian.PutUint32(attr[28:], uint32(len(logBuf)))
	binary.LittleEndian.PutUint64(attr[32:], uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgLoad, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
	if errno != 0 {
		return fmt.Errorf("cgroup v2: load device program: %w: %s", errno, cstring(logBuf))
	}
	defer unix.Close(int(fd))
	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	defer cg.Close()
	var at [32]byte
	binary.LittleEndian.PutUint32(at[0:], uint32(cg.Fd()))
	binary.LittleEndian.PutUint32(at[4:], uint32(fd))
	binary.LittleEndian.PutUint32(at[8:], bpfCgroupDevice)
	if _, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgAttach, uintptr(unsafe.Pointer(&at[0])), unsafe.Sizeof(at)); errno != 0 {
		return fmt.Errorf("cgroup v2: attach device program to %s: %w", dir, errno)
	}
	return nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
