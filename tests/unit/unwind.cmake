# Fixtures of test_unwind_cfi (tests/data/unwind): the same C chain built -O2
# -fomit-frame-pointer with .eh_frame (libunwfix.so, plus hand-written CFI cases in assembly)
# and with compressed .debug_frame only (libunwfix_dbg.so).
set(AP_UNWFIX_SRC ${CMAKE_SOURCE_DIR}/tests/data/unwind)
enable_language(ASM) # unwfix_asm.S: CFI written by hand

add_library(unwfix SHARED ${AP_UNWFIX_SRC}/unwfix.c ${AP_UNWFIX_SRC}/unwfix_asm.S)
add_library(unwfix_dbg SHARED ${AP_UNWFIX_SRC}/unwfix.c)
target_compile_options(unwfix PRIVATE -O2 -fomit-frame-pointer)
target_compile_options(unwfix_dbg PRIVATE -O2 -fomit-frame-pointer -g -gz=zlib
                       -fno-asynchronous-unwind-tables -fno-unwind-tables)
set_target_properties(unwfix unwfix_dbg PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
ap_no_sanitize(unwfix unwfix_dbg)
# the replay test names its own frames with dladdr()
set_target_properties(test_unwind_cfi PROPERTIES ENABLE_EXPORTS ON)
target_link_libraries(test_unwind_cfi PRIVATE unwfix ${CMAKE_DL_LIBS})
add_dependencies(test_unwind_cfi unwfix unwfix_dbg nofp_stripped)
