#define ANSWER 43
	.text
	.globl	asm_answer2
asm_answer2:
	movl	$ANSWER, %eax
	retq
	.section	.note.GNU-stack,"",@progbits
