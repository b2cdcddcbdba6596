; x86-TSO litmus test bodies (docs/litmus.md; herdtools7 x86 catalogue).
; Written in assembly so that each thread runs exactly the instructions of the
; test: the compiler may neither reorder nor merge them.
;
; Every body: rdi = shared block (x at +0, y at +64: separate cache lines),
;             rsi = this thread's registers (r0 at +0, r1 at +8).
[BITS 64]
section .text

%define X qword [rdi]
%define Y qword [rdi + 64]

%macro BODY 1
global litmus_%1
litmus_%1:
%endmacro

; SB: P0 x=1; r0=y   P1 y=1; r0=x
BODY sb_p0
    mov X, 1
    mov rax, Y
    mov [rsi], rax
    ret
BODY sb_p1
    mov Y, 1
    mov rax, X
    mov [rsi], rax
    ret
; SB+mfences
BODY sbmf_p0
    mov X, 1
    mfence
    mov rax, Y
    mov [rsi], rax
    ret
BODY sbmf_p1
    mov Y, 1
    mfence
    mov rax, X
    mov [rsi], rax
    ret
; SB with XCHG (locked) stores
BODY sbx_p0
    mov eax, 1
    xchg X, rax
    mov rax, Y
    mov [rsi], rax
    ret
BODY sbx_p1
    mov eax, 1
    xchg Y, rax
    mov rax, X
    mov [rsi], rax
    ret
; MP: P0 x=1; y=1   P1 r0=y; r1=x
BODY mp_p0
    mov X, 1
    mov Y, 1
    ret
BODY mp_p1
    mov rax, Y
    mov rcx, X
    mov [rsi], rax
    mov [rsi + 8], rcx
    ret
; LB: P0 r0=x; y=1   P1 r0=y; x=1
BODY lb_p0
    mov rax, X
    mov Y, 1
    mov [rsi], rax
    ret
BODY lb_p1
    mov rax, Y
    mov X, 1
    mov [rsi], rax
    ret
; S: P0 x=2; y=1   P1 r0=y; x=1
BODY s_p0
    mov X, 2
    mov Y, 1
    ret
BODY s_p1
    mov rax, Y
    mov X, 1
    mov [rsi], rax
    ret
; R: P0 x=1; y=1   P1 y=2; r0=x   (and R+mfence: MFENCE in P1)
BODY r_p0
    mov X, 1
    mov Y, 1
    ret
BODY r_p1
    mov Y, 2
    mov rax, X
    mov [rsi], rax
    ret
BODY rmf_p1
    mov Y, 2
    mfence
    mov rax, X
    mov [rsi], rax
    ret
; 2+2W: P0 x=2; y=1   P1 y=2; x=1
BODY w22_p0
    mov X, 2
    mov Y, 1
    ret
BODY w22_p1
    mov Y, 2
    mov X, 1
    ret
; WRC: P0 x=1   P1 r0=x; y=1   P2 r0=y; r1=x
BODY wrc_p0
    mov X, 1
    ret
BODY wrc_p1
    mov rax, X
    mov Y, 1
    mov [rsi], rax
    ret
BODY wrc_p2
    mov rax, Y
    mov rcx, X
    mov [rsi], rax
    mov [rsi + 8], rcx
    ret
; RWC: P0 x=1   P1 r0=x; r1=y   P2 y=1; r0=x   (RWC+mfence: MFENCE in P2)
BODY rwc_p0
    mov X, 1
    ret
BODY rwc_p1
    mov rax, X
    mov rcx, Y
    mov [rsi], rax
    mov [rsi + 8], rcx
    ret
BODY rwc_p2
    mov Y, 1
    mov rax, X
    mov [rsi], rax
    ret
BODY rwcmf_p2
    mov Y, 1
    mfence
    mov rax, X
    mov [rsi], rax
    ret
; IRIW: P0 x=1   P1 y=1   P2 r0=x; r1=y   P3 r0=y; r1=x
BODY iriw_p0
    mov X, 1
    ret
BODY iriw_p1
    mov Y, 1
    ret
BODY iriw_p2
    mov rax, X
    mov rcx, Y
    mov [rsi], rax
    mov [rsi + 8], rcx
    ret
BODY iriw_p3
    mov rax, Y
    mov rcx, X
    mov [rsi], rax
    mov [rsi + 8], rcx
    ret
