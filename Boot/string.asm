; memset / memcpy / memmove / memcmp for the embedded Swift runtime and the kernel,
; plus `free`, which Swift cannot define under that name: it jumps to the heap.
[BITS 64]
section .text
extern kfree

global memset
memset:                     ; rdi = dst, esi = byte, rdx = count -> rax = dst
    mov r9, rdi
    mov eax, esi
    mov rcx, rdx
    rep stosb
    mov rax, r9
    ret

global memcpy
memcpy:                     ; rdi = dst, rsi = src, rdx = count -> rax = dst
    mov rax, rdi
    mov rcx, rdx
    rep movsb
    ret

global memmove
memmove:
    mov rax, rdi
    mov rcx, rdx
    cmp rdi, rsi
    jbe .forward
    lea r8, [rsi + rdx]
    cmp rdi, r8
    jae .forward
    ; overlapping with dst above src: copy backwards
    lea rsi, [rsi + rdx - 1]
    lea rdi, [rdi + rdx - 1]
    std
    rep movsb
    cld
    ret
.forward:
    rep movsb
    ret

global memcmp
memcmp:                     ; rdi, rsi, rdx -> eax <0, 0, >0
    xor eax, eax
    test rdx, rdx
    jz .done
.loop:
    movzx eax, byte [rdi]
    movzx ecx, byte [rsi]
    sub eax, ecx
    jnz .done
    inc rdi
    inc rsi
    dec rdx
    jnz .loop
.done:
    ret

global free
free:
    jmp kfree
