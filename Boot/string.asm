; memset / memcpy / memmove / memcmp for the embedded Swift runtime and the kernel,
; plus `free`, which Swift cannot define under that name: it jumps to the heap.
[BITS 64]
section .text
extern kfree

; memset and memcpy move eight bytes per step, then the tail byte by byte: under
; TCG every iteration of a REP string instruction is a separate trip through the
; translated block, so `rep stosb` over a 64-byte object cost eight times what
; `rep stosq` does (the heap poisons every freed object with memset).
global memset
memset:                     ; rdi = dst, esi = byte, rdx = count -> rax = dst
    mov r9, rdi
    movzx eax, sil
    mov r8, 0x0101010101010101
    imul rax, r8            ; the byte in all eight lanes
    mov rcx, rdx
    shr rcx, 3
    rep stosq
    mov rcx, rdx
    and rcx, 7
    rep stosb
    mov rax, r9
    ret

global memcpy
memcpy:                     ; rdi = dst, rsi = src, rdx = count -> rax = dst
    mov rax, rdi
    mov rcx, rdx
    shr rcx, 3
    rep movsq
    mov rcx, rdx
    and rcx, 7
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
