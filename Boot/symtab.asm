; Room for the kernel's symbol table (format: Kernel/Core/SymbolTable.swift).
; The link reserves it zero-filled; scripts/symbols.sh then writes the table into
; it with llvm-objcopy --update-section, which must not change the section's size,
; so that no address in the linked image moves. A table larger than this fails
; the build (raise SYMTAB_BYTES); a kernel whose table was never written finds
; zeros here and prints bare addresses.
SYMTAB_BYTES equ 256 * 1024      ; about 1,700 functions need about 90 KiB today

section .ksymtab progbits alloc noexec nowrite align=8
    times SYMTAB_BYTES db 0
