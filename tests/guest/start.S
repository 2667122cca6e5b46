/* SPDX-License-Identifier: Apache-2.0 */
/* Entry in long mode (RDI = boot info), interrupt and exception stubs of the test guest. */
	.section .text.start, "ax"
	.globl _start
_start:
	lea	stack_top(%rip), %rsp
	xor	%ebp, %ebp
	call	guest_main
	mov	%eax, %edi
	call	guest_exit
1:	cli
	hlt
	jmp	1b

/* Device interrupts: save the caller-saved registers, call C, return. */
.macro ISR name, cfunc
	.globl \name
\name:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	call	\cfunc
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq
.endm
	ISR isr_timer, timer_isr
	ISR isr_test, test_isr
	ISR isr_nic0, nic_isr0
	ISR isr_nic1, nic_isr1
	ISR isr_nic2, nic_isr2
	ISR isr_nic_intx, nic_isr_intx

	.globl isr_spurious
isr_spurious:
	iretq

/* Exceptions: push the vector and report; the guest never returns from one. */
.macro EXC vec
	.globl exc_\vec
exc_\vec:
	mov	$\vec, %edi
	mov	%rsp, %rsi
	and	$-16, %rsp
	call	exception
1:	hlt
	jmp	1b
.endm
	EXC 0
	EXC 1
	EXC 2
	EXC 3
	EXC 4
	EXC 5
	EXC 6
	EXC 7
	EXC 8
	EXC 10
	EXC 11
	EXC 12
	EXC 13
	EXC 14
	EXC 16
	EXC 17
	EXC 18
	EXC 19

	.section .bss
	.balign 16
stack:
	.skip 65536
stack_top:
	.section .note.GNU-stack, "", @progbits
