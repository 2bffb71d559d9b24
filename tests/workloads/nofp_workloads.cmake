# Workloads without frame pointers (tests/bpf/test_unwind_*.py, bench/unwind_vs_perf.py):
# -O2 -fomit-frame-pointer like distribution binaries, a shared library called through the
# PLT, one loaded with dlopen(), C++ and (when a rustc is installed) Rust. The executables find
# their libraries next to them (RUNPATH $ORIGIN), so the stripped copies in nofp_stripped/
# (no .symtab, no debug info: names from .dynsym) run with stripped libraries.
set(AP_NOFP_FLAGS -O2 -fomit-frame-pointer)

add_library(nofp_lib SHARED nofp_lib.c)
add_library(nofp_dl SHARED nofp_dl.c)
add_executable(nofp_chain nofp_chain.c)
target_link_libraries(nofp_chain PRIVATE nofp_lib ${CMAKE_DL_LIBS})
add_executable(nofp_cpp nofp_cpp.cpp)
find_package(Threads REQUIRED)
target_link_libraries(nofp_cpp PRIVATE Threads::Threads)
# slow syscalls and a contended mutex from known chains (tests/bpf/test_unwind_events.py)
add_executable(nofp_sleep nofp_sleep.c)
add_executable(nofp_lock nofp_lock.c)
target_link_libraries(nofp_lock PRIVATE Threads::Threads)
foreach(t nofp_lib nofp_dl nofp_chain nofp_cpp nofp_sleep nofp_lock)
  target_compile_options(${t} PRIVATE ${AP_NOFP_FLAGS})
  ap_no_sanitize(${t})
  set_target_properties(${t} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR} LIBRARY_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
endforeach()
foreach(t nofp_chain nofp_cpp nofp_sleep nofp_lock)
  # ENABLE_EXPORTS (-rdynamic): the workload's functions stay named in .dynsym once stripped
  set_target_properties(${t} PROPERTIES ENABLE_EXPORTS ON
    BUILD_WITH_INSTALL_RPATH ON INSTALL_RPATH "\$ORIGIN")
endforeach()
add_dependencies(nofp_chain nofp_dl)

if(NOT CMAKE_STRIP)
  find_program(CMAKE_STRIP strip REQUIRED)
endif()
set(AP_NOFP_STRIPPED ${AP_TEST_BIN_DIR}/nofp_stripped)
add_custom_command(
  OUTPUT ${AP_NOFP_STRIPPED}/nofp_chain ${AP_NOFP_STRIPPED}/libnofp_lib.so
         ${AP_NOFP_STRIPPED}/libnofp_dl.so ${AP_NOFP_STRIPPED}/nofp_cpp
  COMMAND ${CMAKE_COMMAND} -E make_directory ${AP_NOFP_STRIPPED}
  COMMAND ${CMAKE_STRIP} -o ${AP_NOFP_STRIPPED}/nofp_chain $<TARGET_FILE:nofp_chain>
  COMMAND ${CMAKE_STRIP} -o ${AP_NOFP_STRIPPED}/libnofp_lib.so $<TARGET_FILE:nofp_lib>
  COMMAND ${CMAKE_STRIP} -o ${AP_NOFP_STRIPPED}/libnofp_dl.so $<TARGET_FILE:nofp_dl>
  COMMAND ${CMAKE_STRIP} -o ${AP_NOFP_STRIPPED}/nofp_cpp $<TARGET_FILE:nofp_cpp>
  DEPENDS nofp_chain nofp_lib nofp_dl nofp_cpp
  COMMENT "strip the no-frame-pointer workloads")
add_custom_target(nofp_stripped ALL DEPENDS ${AP_NOFP_STRIPPED}/nofp_chain
  ${AP_NOFP_STRIPPED}/libnofp_lib.so ${AP_NOFP_STRIPPED}/libnofp_dl.so
  ${AP_NOFP_STRIPPED}/nofp_cpp)

# Rust, when a rustc is on the PATH (the test skips that part otherwise).
find_program(AP_RUSTC rustc)
if(AP_RUSTC)
  add_custom_command(
    OUTPUT ${AP_TEST_BIN_DIR}/nofp_rust
    # without make's jobserver variables, which rustc would try (and fail) to join
    COMMAND ${CMAKE_COMMAND} -E env --unset=MAKEFLAGS --unset=MFLAGS
            ${AP_RUSTC} --edition 2021 -C opt-level=2 -C force-frame-pointers=no
            -o ${AP_TEST_BIN_DIR}/nofp_rust ${CMAKE_CURRENT_SOURCE_DIR}/nofp_rust.rs
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/nofp_rust.rs
    COMMENT "rustc nofp_rust.rs")
  add_custom_target(nofp_rust ALL DEPENDS ${AP_TEST_BIN_DIR}/nofp_rust)
endif()
