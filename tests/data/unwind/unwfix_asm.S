/* SPDX-License-Identifier: MIT */
/*
 * Hand-written CFI cases for tests/unit/test_unwind_cfi.c. Global labels mark the pcs the
 * test looks rows up at (uwc_<case>_<what>).
 */
	.text

/* void unw_capture(struct ap_uregs *r): a frameless leaf that stores its own pc, sp, bp. */
	.globl unw_capture
	.type unw_capture, @function
unw_capture:
	.cfi_startproc
	lea 0(%rip), %rax
	.globl uwc_capture_pc
uwc_capture_pc:
	mov %rax, 0(%rdi)
	mov %rsp, 8(%rdi)
	mov %rbp, 16(%rdi)
	movl $1, 24(%rdi)
	ret
	.cfi_endproc
	.size unw_capture, .-unw_capture

/* push/pop with remember/restore around an early exit */
	.globl uwc_state
	.type uwc_state, @function
uwc_state:
	.cfi_startproc
	push %rbx
	.cfi_def_cfa_offset 16
	.cfi_offset %rbx, -16
	push %rbp
	.cfi_def_cfa_offset 24
	.cfi_offset %rbp, -24
	.globl uwc_state_pushed
uwc_state_pushed:
	test %rdi, %rdi
	jz 1f
	.cfi_remember_state
	pop %rbp
	.cfi_def_cfa_offset 16
	pop %rbx
	.cfi_def_cfa_offset 8
	.globl uwc_state_early_ret
uwc_state_early_ret:
	ret
	.cfi_restore_state
1:
	.globl uwc_state_restored
uwc_state_restored:
	nop
	pop %rbp
	.cfi_def_cfa_offset 16
	pop %rbx
	.cfi_def_cfa_offset 8
	ret
	.cfi_endproc
	.size uwc_state, .-uwc_state

/* classic frame pointer */
	.globl uwc_fp
	.type uwc_fp, @function
uwc_fp:
	.cfi_startproc
	push %rbp
	.cfi_def_cfa_offset 16
	.cfi_offset %rbp, -16
	mov %rsp, %rbp
	.cfi_def_cfa_register %rbp
	.globl uwc_fp_body
uwc_fp_body:
	nop
	leave
	.cfi_def_cfa %rsp, 8
	ret
	.cfi_endproc
	.size uwc_fp, .-uwc_fp

/* GCC's DRAP realignment: CFA = *(RBP - 8), RBP saved at [RBP] */
	.globl uwc_drap
	.type uwc_drap, @function
uwc_drap:
	.cfi_startproc
	lea 8(%rsp), %r10
	.cfi_def_cfa %r10, 0
	.globl uwc_drap_r10
uwc_drap_r10:
	and $-32, %rsp
	push -8(%r10)
	push %rbp
	mov %rsp, %rbp
	/* DW_CFA_expression rbp, [DW_OP_breg6 0] */
	.cfi_escape 0x10, 0x06, 0x02, 0x76, 0x00
	push %r10
	/* DW_CFA_def_cfa_expression [DW_OP_breg6 -8; DW_OP_deref] */
	.cfi_escape 0x0f, 0x03, 0x76, 0x78, 0x06
	.globl uwc_drap_body
uwc_drap_body:
	nop
	pop %r10
	.cfi_def_cfa %r10, 0
	pop %rbp
	lea -8(%r10), %rsp
	.cfi_def_cfa %rsp, 8
	ret
	.cfi_endproc
	.size uwc_drap, .-uwc_drap

/* binutils' PLT rule: CFA = RSP + 8 + ((RIP & 15) >= 11) * 8 */
	.globl uwc_plt
	.type uwc_plt, @function
uwc_plt:
	.cfi_startproc
	.cfi_escape 0x0f, 0x0b, 0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22
	.globl uwc_plt_body
uwc_plt_body:
	nop
	ret
	.cfi_endproc
	.size uwc_plt, .-uwc_plt

/* outermost frame: return address undefined (like _start) */
	.globl uwc_end
	.type uwc_end, @function
uwc_end:
	.cfi_startproc
	.cfi_undefined %rip
	.globl uwc_end_body
uwc_end_body:
	nop
	ret
	.cfi_endproc
	.size uwc_end, .-uwc_end

/* a signal trampoline ('S' augmentation) */
	.globl uwc_signal
	.type uwc_signal, @function
	nop
uwc_signal:
	.cfi_startproc simple
	.cfi_signal_frame
	.cfi_def_cfa %rsp, 8
	.globl uwc_signal_body
uwc_signal_body:
	nop
	ret
	.cfi_endproc
	.size uwc_signal, .-uwc_signal

/* a CFA in a register the walker does not track */
	.globl uwc_unsupported
	.type uwc_unsupported, @function
uwc_unsupported:
	.cfi_startproc
	.cfi_def_cfa %r11, 16
	.globl uwc_unsupported_body
uwc_unsupported_body:
	nop
	ret
	.cfi_endproc
	.size uwc_unsupported, .-uwc_unsupported

/* code without any CFI after a gap: frame pointers there */
	.globl uwc_nocfi
	.type uwc_nocfi, @function
	.p2align 6
uwc_nocfi:
	.rept 32
	nop
	.endr
	ret
	.size uwc_nocfi, .-uwc_nocfi

	.section .note.GNU-stack,"",@progbits
