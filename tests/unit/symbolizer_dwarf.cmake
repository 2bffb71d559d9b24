# Fixtures of test_symbolizer_{dwarf,jit,debuginfod} (tests/data/symbolizer),
# built the way users build release code: -O2 -g, then stripped with the debug info split off.
# All land in ${AP_TEST_BIN_DIR}/dwarf:
#   dwfix            C, -O2 -g, inline chains in itself and in libapdw.so; dlopens libapdw_dl.so
#   dwfix.debug      its DWARF alone (objcopy --only-keep-debug)
#   dwfix.stripped   no symbols, no DWARF, a .gnu_debuglink to dwfix.debug (same directory)
#   dwfix.nolink     no symbols, no DWARF, no link: found by build-id only (debug dir, debuginfod)
#   dwfix_cxx        C++, -O2 -g (-rdynamic); dwfix_cxx.stripped without anything but .dynsym
#   dwfix_rs         Rust, when a rustc is on PATH
#   jitfix           writes /tmp/perf-PID.map for code it copies into anonymous memory
# Custom commands rather than targets: the flags are the point of these files, and they must
# not depend on the project's build type or languages.
set(AP_DWFIX_SRC ${CMAKE_SOURCE_DIR}/tests/data/symbolizer)
set(AP_DWFIX_DIR ${AP_TEST_BIN_DIR}/dwarf)
file(MAKE_DIRECTORY ${AP_DWFIX_DIR})
find_program(AP_OBJCOPY NAMES objcopy REQUIRED)
find_program(AP_FIX_CXX NAMES g++ c++)
find_program(AP_FIX_RUSTC NAMES rustc)

set(AP_DWFIX_CFLAGS -O2 -g -fno-omit-frame-pointer -I${AP_DWFIX_SRC})
set(AP_DWFIX_OUTPUTS)

add_custom_command(
  OUTPUT ${AP_DWFIX_DIR}/libapdw.so ${AP_DWFIX_DIR}/libapdw_dl.so
  COMMAND ${CMAKE_C_COMPILER} ${AP_DWFIX_CFLAGS} -fPIC -shared
          -o ${AP_DWFIX_DIR}/libapdw.so ${AP_DWFIX_SRC}/dwarf_lib.c
  COMMAND ${CMAKE_C_COMPILER} ${AP_DWFIX_CFLAGS} -fPIC -shared
          -o ${AP_DWFIX_DIR}/libapdw_dl.so ${AP_DWFIX_SRC}/dwarf_dl.c
  DEPENDS ${AP_DWFIX_SRC}/dwarf_lib.c ${AP_DWFIX_SRC}/dwarf_dl.c ${AP_DWFIX_SRC}/dwarf_fix.h
  COMMENT "DWARF fixture libraries"
  VERBATIM)

add_custom_command(
  OUTPUT ${AP_DWFIX_DIR}/dwfix ${AP_DWFIX_DIR}/dwfix.debug ${AP_DWFIX_DIR}/dwfix.stripped
         ${AP_DWFIX_DIR}/dwfix.nolink
  COMMAND ${CMAKE_C_COMPILER} ${AP_DWFIX_CFLAGS} -fPIE -pie -rdynamic
          -o ${AP_DWFIX_DIR}/dwfix ${AP_DWFIX_SRC}/dwarf_main.c
          -L${AP_DWFIX_DIR} -lapdw -Wl,-rpath,$ORIGIN -ldl
  COMMAND ${AP_OBJCOPY} --only-keep-debug dwfix dwfix.debug
  # the link records the debug file's name and CRC: run where it lies
  COMMAND ${AP_OBJCOPY} --strip-all --add-gnu-debuglink=dwfix.debug dwfix dwfix.stripped
  COMMAND ${AP_OBJCOPY} --strip-all dwfix dwfix.nolink
  WORKING_DIRECTORY ${AP_DWFIX_DIR}
  DEPENDS ${AP_DWFIX_SRC}/dwarf_main.c ${AP_DWFIX_SRC}/dwarf_fix.h ${AP_DWFIX_DIR}/libapdw.so
  COMMENT "DWARF fixture (C): unstripped, split debug, stripped"
  VERBATIM)
list(APPEND AP_DWFIX_OUTPUTS ${AP_DWFIX_DIR}/dwfix.nolink)

add_custom_command(
  OUTPUT ${AP_DWFIX_DIR}/jitfix
  COMMAND ${CMAKE_C_COMPILER} -O2 -o ${AP_DWFIX_DIR}/jitfix ${AP_DWFIX_SRC}/jit_main.c
  DEPENDS ${AP_DWFIX_SRC}/jit_main.c
  COMMENT "JIT (perf map) fixture"
  VERBATIM)
list(APPEND AP_DWFIX_OUTPUTS ${AP_DWFIX_DIR}/jitfix)

if(AP_FIX_CXX)
  add_custom_command(
    OUTPUT ${AP_DWFIX_DIR}/dwfix_cxx ${AP_DWFIX_DIR}/dwfix_cxx.stripped
    COMMAND ${AP_FIX_CXX} -O2 -g -fno-omit-frame-pointer -rdynamic
            -o ${AP_DWFIX_DIR}/dwfix_cxx ${AP_DWFIX_SRC}/dwarf_cxx.cpp
    COMMAND ${AP_OBJCOPY} --strip-all dwfix_cxx dwfix_cxx.stripped
    WORKING_DIRECTORY ${AP_DWFIX_DIR}
    DEPENDS ${AP_DWFIX_SRC}/dwarf_cxx.cpp
    COMMENT "DWARF fixture (C++)"
  VERBATIM)
  list(APPEND AP_DWFIX_OUTPUTS ${AP_DWFIX_DIR}/dwfix_cxx.stripped)
endif()

if(AP_FIX_RUSTC)
  add_custom_command(
    OUTPUT ${AP_DWFIX_DIR}/dwfix_rs
    # rustc would complain about make's jobserver it cannot use
    COMMAND ${CMAKE_COMMAND} -E env --unset=MAKEFLAGS --unset=MFLAGS ${AP_FIX_RUSTC} -C opt-level=2 -g --crate-name dwfix_rs
            -o ${AP_DWFIX_DIR}/dwfix_rs ${AP_DWFIX_SRC}/dwarf_rs.rs
    DEPENDS ${AP_DWFIX_SRC}/dwarf_rs.rs
    COMMENT "DWARF fixture (Rust)"
  VERBATIM)
  list(APPEND AP_DWFIX_OUTPUTS ${AP_DWFIX_DIR}/dwfix_rs)
endif()

add_custom_target(symfix_dwarf DEPENDS ${AP_DWFIX_OUTPUTS})
foreach(t test_symbolizer_dwarf test_symbolizer_jit test_symbolizer_debuginfod)
  if(TARGET ${t})
    add_dependencies(${t} symfix_dwarf)
    target_compile_definitions(${t} PRIVATE AP_DWFIX_DIR="${AP_DWFIX_DIR}")
  endif()
endforeach()

# binutils' addr2line (2.40) misses the inlined frames in clang's DWARF 5, where LLVM's agrees
# with libdw: a clang build (the sanitizer builds) compares with llvm-addr2line (package llvm).
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  find_program(AP_LLVM_ADDR2LINE NAMES llvm-addr2line llvm-addr2line-14)
  if(AP_LLVM_ADDR2LINE)
    target_compile_definitions(test_symbolizer_dwarf PRIVATE
      AP_ADDR2LINE="${AP_LLVM_ADDR2LINE}")
  endif()
endif()
