	.text
	.globl	asm_answer
	.type	asm_answer,@function
asm_answer:
	movl	$42, %eax
	retq
	.section	.note.GNU-stack,"",@progbits
