# BPF object -> libbpf skeleton helper.
#   ap_bpf_skeleton(NAME SOURCE) builds SOURCE (x.bpf.c) with clang for the BPF target against a
#   vmlinux.h generated into the build tree, and generates ${NAME}.skel.h with bpftool.
# VMLINUX_BTF overrides the BTF file used for vmlinux.h (default: the running kernel's).

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF file vmlinux.h is generated from")

set(AP_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${AP_BPF_GEN_DIR})

# The BPF programs' target architecture (__TARGET_ARCH_<arch>: libbpf's PT_REGS_* macros and
# src/bpf/regs.h pick their registers by it). Only x86-64 builds: the in-kernel CFI stack
# walker, compiled into every program, knows x86-64's registers, return-address rule and
# signal frame only (docs/unwinding.md, "Limits"). Refusing here beats failing later inside
# clang on x86 pt_regs fields, or loading programs that walk stacks with the wrong rules.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(AP_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  message(FATAL_ERROR
    "Aperture builds for x86-64 only; the target architecture is '${CMAKE_SYSTEM_PROCESSOR}'.\n"
    "The BPF programs read registers through libbpf's arch-neutral PT_REGS_* macros and "
    "src/bpf/regs.h (which knows arm64), but the in-kernel CFI unwinder (src/bpf/unwind*.h, "
    "src/unwind/cfi_*.c) handles x86-64 registers, return addresses and signal frames only: "
    "see docs/unwinding.md, \"Limits\". Porting it is what an arm64 build needs.")
else()
  message(FATAL_ERROR
    "Aperture builds for x86-64 only; the target architecture is '${CMAKE_SYSTEM_PROCESSOR}' "
    "(neither its BPF registers nor its stack unwinding are supported; see docs/unwinding.md).")
endif()

add_custom_command(
  OUTPUT ${AP_BPF_GEN_DIR}/vmlinux.h
  COMMAND ${BPFTOOL} btf dump file ${VMLINUX_BTF} format c > ${AP_BPF_GEN_DIR}/vmlinux.h.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${AP_BPF_GEN_DIR}/vmlinux.h.tmp ${AP_BPF_GEN_DIR}/vmlinux.h
  DEPENDS ${VMLINUX_BTF}
  COMMENT "Generating vmlinux.h from ${VMLINUX_BTF}")
add_custom_target(ap_vmlinux DEPENDS ${AP_BPF_GEN_DIR}/vmlinux.h)

function(ap_bpf_skeleton name source)
  get_filename_component(src_abs ${source} ABSOLUTE)
  get_filename_component(src_dir ${src_abs} DIRECTORY)
  set(obj ${AP_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${AP_BPF_GEN_DIR}/${name}.skel.h)
  file(GLOB bpf_headers ${src_dir}/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${AP_BPF_ARCH}
            -Wall -Wno-unused-function
            -I${AP_BPF_GEN_DIR} -I${src_dir}
            # libbpf's usdt.bpf.h includes <linux/errno.h>, whose <asm/errno.h> lives in
            # the multiarch directory clang -target bpf does not search
            -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs} ${bpf_headers} ap_vmlinux
    COMMENT "BPF ${name}.bpf.o")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h")
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()
