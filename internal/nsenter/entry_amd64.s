#include "textflag.h"

// func Entry()
// The process's first instruction. The stack holds argc, argv[], NULL,
// envp[], NULL. Look for "_TENT_USERNS_FD=<digits>" in envp; if found,
// setns(fd, CLONE_NEWUSER) and record the result. Then start Go as usual.
TEXT ·Entry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$1, AX
	MOVQ	AX, ·ran(SB)
	MOVQ	0(SP), CX		// argc
	LEAQ	16(SP)(CX*8), BX	// envp = SP + 8 + (argc+1)*8
next:
	MOVQ	0(BX), SI
	TESTQ	SI, SI
	JZ	done
	ADDQ	$8, BX
	MOVQ	$0x53555f544e45545f, DI	// "_TENT_US"
	CMPQ	DI, 0(SI)
	JNE	next
	MOVQ	$0x3d44465f534e5245, DI	// "ERNS_FD="
	CMPQ	DI, 8(SI)
	JNE	next
	ADDQ	$16, SI
	XORQ	DI, DI			// the descriptor
	MOVQ	SI, R8			// start of the digits
digit:
	MOVBQZX	0(SI), DX
	SUBQ	$48, DX
	CMPQ	DX, $9
	JHI	parsed			// not a digit (unsigned wrap below '0')
	IMULQ	$10, DI
	ADDQ	DX, DI
	INCQ	SI
	JMP	digit
parsed:
	CMPQ	SI, R8
	JEQ	bad			// no digits at all
	MOVQ	$308, AX		// SYS_setns
	MOVQ	$0x10000000, SI		// CLONE_NEWUSER
	SYSCALL
	MOVQ	AX, ·result(SB)
	JMP	done
bad:
	MOVQ	$-9, AX			// -EBADF
	MOVQ	AX, ·result(SB)
done:
	JMP	_rt0_amd64_linux(SB)
